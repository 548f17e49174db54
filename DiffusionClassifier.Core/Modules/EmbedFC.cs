using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// A two-layer perceptron, Linear - GELU - Linear, that embeds a timestep or a label (reference <c>EmbedFC</c>).
/// The input is reshaped to <c>[-1, inputDim]</c> (the reference views it).
/// </summary>
/// <remarks>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c> (they only read the weights); not while training or being modified.</remarks>
internal sealed class EmbedFC : Module<Tensor, Tensor>
{
    private readonly Sequential model;
    private readonly long inputDim;

    /// <summary>Creates the embedding.</summary>
    /// <param name="inputDim">Input features.</param>
    /// <param name="embDim">Embedding size.</param>
    public EmbedFC(long inputDim, long embDim) : base(nameof(EmbedFC))
    {
        this.inputDim = inputDim;
        model = Sequential(Linear(inputDim, embDim), GELU(), Linear(embDim, embDim));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return model.call(x.reshape(-1, inputDim)).MoveToOuterDisposeScope();
    }
}
