using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// Concatenates the input with a skip connection, upsamples 2x with a transposed convolution and applies two
/// <see cref="ResidualConvBlock"/>s (reference <c>UNetUp</c>).
/// </summary>
/// <remarks>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c>; not while training or being modified.</remarks>
internal sealed class UNetUp : Module<Tensor, Tensor, Tensor>
{
    private readonly Sequential model;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Channels of the input and skip together.</param>
    /// <param name="outChannels">Output channels.</param>
    public UNetUp(long inChannels, long outChannels) : base(nameof(UNetUp))
    {
        model = Sequential(
            ConvTranspose2d(inChannels, outChannels, 2, stride: 2),
            new ResidualConvBlock(outChannels, outChannels),
            new ResidualConvBlock(outChannels, outChannels));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x, Tensor skip)
    {
        using var scope = NewDisposeScope();
        return model.call(cat([x, skip], 1)).MoveToOuterDisposeScope();
    }
}
