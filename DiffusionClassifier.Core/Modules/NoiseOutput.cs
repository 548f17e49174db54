using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// The output block (reference <c>out</c>): Conv2d(2F, F, 3) - GroupNorm(8, F) - ReLU - Conv2d(F, C, 3).
/// Its parameters keep the reference's Sequential indices (<c>0</c>, <c>1</c>, <c>3</c>).
/// </summary>
/// <remarks>
/// Both convolutions go through <see cref="ConvolutionGuard"/> (the last one has C output channels).
/// <para>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c>; not while training or being modified.</para>
/// </remarks>
internal sealed class NoiseOutput : Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private readonly Conv2d conv;
    [ComponentName(Name = "1")]
    private readonly GroupNorm norm;
    [ComponentName(Name = "3")]
    private readonly Conv2d final;

    /// <summary>Creates the block.</summary>
    /// <param name="features">Base width F (input has 2F channels).</param>
    /// <param name="outChannels">Image channels C.</param>
    public NoiseOutput(long features, long outChannels) : base(nameof(NoiseOutput))
    {
        conv = Conv2d(2 * features, features, 3, stride: 1, padding: 1);
        norm = GroupNorm(8, features); // initialised by ConditionalUNet's pass
        final = Conv2d(features, outChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <summary>Whether the last convolution runs padded right now (see <see cref="ConvolutionGuard"/>).</summary>
    internal bool UsesPaddedConvolution => ConvolutionGuard.IsPadded(final);

    /// <summary>The weight of the last convolution, <c>out.3.weight</c> [C, F, 3, 3].</summary>
    internal Parameter FinalWeight => final.weight!;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = functional.relu(norm.call(ConvolutionGuard.Forward(conv, x)));
        return FinalConvolution(y).MoveToOuterDisposeScope();
    }

    /// <summary>The last convolution (<c>3</c>) exactly as <see cref="forward"/> computes it.</summary>
    /// <param name="y">Its input [B, F, H, W].</param>
    internal Tensor FinalConvolution(Tensor y) => ConvolutionGuard.Forward(final, y);
}
