using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>A <see cref="ResidualConvBlock"/> followed by 2x2 max pooling (reference <c>UNetDown</c>).</summary>
/// <remarks>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c>; not while training or being modified.</remarks>
internal sealed class UNetDown : Module<Tensor, Tensor>
{
    private readonly Sequential model;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    public UNetDown(long inChannels, long outChannels) : base(nameof(UNetDown))
    {
        model = Sequential(new ResidualConvBlock(inChannels, outChannels), new MaxPool2x2());
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => model.call(x);
}
