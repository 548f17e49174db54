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
/// TorchSharp 0.107 / libtorch 2.10 on CPU computes a wrong input gradient for a float32 Conv2d with few output
/// channels (wrong for 1, 4, 8; right from 16). While autograd is recording, the last convolution therefore runs
/// with its weight and bias zero-padded to <see cref="MinimumGradientSafeChannels"/> output channels and the result
/// is sliced back: the forward values are identical and the gradients correct. Inference uses the plain convolution.
/// <para>Thread safety: as every module, safe for concurrent forwards in eval mode under <c>no_grad</c>/<c>inference_mode</c>; not while training or being modified.</para>
/// </remarks>
public sealed class NoiseOutput : Module<Tensor, Tensor>
{
    /// <summary>Output channel count from which the libtorch CPU convolution backward was verified correct.</summary>
    public const int MinimumGradientSafeChannels = 16;

    [ComponentName(Name = "0")]
    private readonly Conv2d conv;
    [ComponentName(Name = "1")]
    private readonly GroupNorm norm;
    [ComponentName(Name = "3")]
    private readonly Conv2d final;
    private readonly long outChannels;

    /// <summary>Creates the block.</summary>
    /// <param name="features">Base width F (input has 2F channels).</param>
    /// <param name="outChannels">Image channels C.</param>
    public NoiseOutput(long features, long outChannels) : base(nameof(NoiseOutput))
    {
        this.outChannels = outChannels;
        conv = Conv2d(2 * features, features, 3, stride: 1, padding: 1);
        norm = ConditionalUNet.CreateGroupNorm(8, features);
        final = Conv2d(features, outChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <summary>Whether the padded, gradient-safe path is taken for the last convolution.</summary>
    public bool UsesPaddedConvolution =>
        !disableGradientWorkaround && is_grad_enabled() && outChannels < MinimumGradientSafeChannels;

    // Per thread, so that a test that turns the workaround off cannot affect tests running in parallel.
    [ThreadStatic]
    private static bool disableGradientWorkaround;

    /// <summary>Tests only: turns the padded path off on the calling thread, to measure the defect it avoids.</summary>
    internal static bool DisableGradientWorkaround
    {
        get => disableGradientWorkaround;
        set => disableGradientWorkaround = value;
    }

    /// <summary>The weight of the last convolution, <c>out.3.weight</c> [C, F, 3, 3].</summary>
    internal Parameter FinalWeight => final.weight!;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = functional.relu(norm.call(conv.call(x)));
        return FinalConvolution(y).MoveToOuterDisposeScope();
    }

    /// <summary>The last convolution (<c>3</c>) exactly as <see cref="forward"/> computes it.</summary>
    /// <param name="y">Its input [B, F, H, W].</param>
    internal Tensor FinalConvolution(Tensor y)
    {
        if (!UsesPaddedConvolution)
            return final.call(y);

        using var scope = NewDisposeScope();
        var weight = final.weight!;
        var bias = final.bias!;
        long extra = MinimumGradientSafeChannels - outChannels;
        var paddedWeight = cat([weight, zeros(new[] { extra, weight.shape[1], weight.shape[2], weight.shape[3] }, weight.dtype, weight.device)], 0);
        var paddedBias = cat([bias, zeros(new[] { extra }, bias.dtype, bias.device)], 0);
        var padded = functional.conv2d(y, paddedWeight, paddedBias, new long[] { 1, 1 }, new long[] { 1, 1 });
        return padded.narrow(1, 0, outChannels).MoveToOuterDisposeScope();
    }
}
