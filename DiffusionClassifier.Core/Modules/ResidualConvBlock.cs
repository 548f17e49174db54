using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// Two 3x3 convolutions, each followed by BatchNorm and exact GELU, with an optional residual connection
/// (reference <c>ResidualConvBlock</c>). With <c>isRes</c> the result is <c>(x + x2) / 1.414</c> when the channel
/// counts match and <c>(x1 + x2) / 1.414</c> otherwise; without it the result is <c>x2</c>.
/// </summary>
/// <remarks>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c>; not while training (BatchNorm updates its running statistics) or being modified.</remarks>
internal sealed class ResidualConvBlock : Module<Tensor, Tensor>
{
    // The reference divides by the literal 1.414, not sqrt(2).
    // A process-lifetime Scalar: see TorchScalars (TorchSharp can free a temporary one during the call).
    private static readonly Scalar ResidualScale = 1.414.ToScalar();

    private readonly Sequential conv1;
    private readonly Sequential conv2;
    private readonly bool isRes;
    private readonly bool sameChannels;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="isRes">Whether to add the residual connection.</param>
    public ResidualConvBlock(long inChannels, long outChannels, bool isRes = false) : base(nameof(ResidualConvBlock))
    {
        this.isRes = isRes;
        sameChannels = inChannels == outChannels;
        conv1 = Sequential(Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1), BatchNorm2d(outChannels), GELU());
        conv2 = Sequential(Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1), BatchNorm2d(outChannels), GELU());
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Through the guard: while training, a convolution with few output channels must run padded.
        var x1 = ConvolutionGuard.Forward(conv1, x);
        var x2 = ConvolutionGuard.Forward(conv2, x1);
        var result = isRes ? (sameChannels ? x : x1).add(x2, TorchScalars.One).div_(ResidualScale) : x2;
        return result.MoveToOuterDisposeScope();
    }
}
