using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// A model read from a <see cref="ModelFile"/>: the network, its schedule, the file's metadata and any extra
/// tensors. Owns the network and the extra tensors; disposing it disposes them (use <see cref="DetachModel"/> to
/// keep the network).
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private ConditionalUNet? model;

    internal LoadedModel(ConditionalUNet model, DdpmScheduler scheduler, IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, Tensor> extraTensors)
    {
        this.model = model;
        Scheduler = scheduler;
        Metadata = metadata;
        ExtraTensors = extraTensors;
    }

    /// <summary>The network, in eval mode.</summary>
    public ConditionalUNet Model => model ?? throw new InvalidOperationException("The model was detached or disposed.");

    /// <summary>The noise schedule the model was trained with.</summary>
    public DdpmScheduler Scheduler { get; }

    /// <summary>All metadata of the file.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Extra tensors by name (without the <see cref="ModelFile.ExtraTensorPrefix"/>).</summary>
    public IReadOnlyDictionary<string, Tensor> ExtraTensors { get; }

    /// <summary>Hands the network to the caller, who then owns and disposes it.</summary>
    public ConditionalUNet DetachModel()
    {
        var m = Model;
        model = null;
        return m;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        model?.Dispose();
        model = null;
        foreach (var t in ExtraTensors.Values) t.Dispose();
    }
}
