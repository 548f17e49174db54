using DiffusionClassifier.Modules;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Training;

/// <summary>
/// Identical tiny networks for trainer tests. <see cref="TinyModels.Create"/> seeds the global generator, but tests
/// of other classes running in parallel may draw from it meanwhile, so its weights are not reliably the same twice.
/// This copies one fixed snapshot of weights into every network it makes.
/// </summary>
internal sealed class TrainerModels : IDisposable
{
    private readonly Dictionary<string, Tensor> initial;
    private readonly ConditionalUNetConfig config;

    public TrainerModels(ConditionalUNetConfig? config = null)
    {
        this.config = config ?? TinyModels.Config();
        using var model = TinyModels.Create(this.config);
        initial = model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>A network with the snapshot's weights; the caller disposes it.</summary>
    public ConditionalUNet Create()
    {
        var model = TinyModels.Create(config);
        ModelFile.CopyStateDict(model, initial);
        return model;
    }

    public void Dispose()
    {
        foreach (var t in initial.Values) t.Dispose();
    }
}
