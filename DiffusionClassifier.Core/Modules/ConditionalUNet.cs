using DiffusionClassifier.Guards;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch.nn;
using static TorchSharp.torch;

namespace DiffusionClassifier.Modules;

/// <summary>
/// The class-conditional U-Net that predicts the noise in a noisy image (reference <c>ContextUnet</c>).
/// Parameter and buffer names equal the reference's <c>state_dict</c> keys without the <c>nn_model.</c> prefix.
/// </summary>
/// <remarks>
/// <para>The forward pass is split into a label-independent <see cref="Trunk"/> and a label-dependent
/// <see cref="Head"/>; <c>forward</c> is exactly <c>Head(Trunk(x), ...)</c>. In eval mode the trunk can be
/// computed once and the head run for every candidate label. In train mode BatchNorm mixes the batch, so the trunk
/// must see the same batch as the head.</para>
/// <para>The module owns its parameters and buffers (native memory): dispose it. A module is not thread-safe while
/// training; concurrent inference calls in eval mode under <c>torch.no_grad()</c> only read the weights.</para>
/// </remarks>
public sealed class ConditionalUNet : Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly ResidualConvBlock init_conv;
    private readonly UNetDown down1;
    private readonly UNetDown down2;
    private readonly Sequential to_vec;
    private readonly EmbedFC timeembed1;
    private readonly EmbedFC timeembed2;
    private readonly EmbedFC contextembed1;
    private readonly EmbedFC contextembed2;
    private readonly Sequential up0;
    private readonly UNetUp up1;
    private readonly UNetUp up2;
    private readonly NoiseOutput @out;

    /// <summary>Builds the network for <paramref name="config"/> with PyTorch's default initialisation.</summary>
    /// <param name="config">The architecture.</param>
    /// <exception cref="ArgumentException">The configuration is not supported.</exception>
    public ConditionalUNet(ConditionalUNetConfig config) : base(nameof(ConditionalUNet))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        long f = config.Features, c = config.InChannels, k = config.Classes;
        long bottomH = config.Height / 4, bottomW = config.Width / 4;
        // TorchSharp's convolution constructors wrap a temporary torch.empty(...) in the weight Parameter and never
        // dispose the temporary, which keeps the weight's storage alive after Dispose until the GC finalizes it (measured:
        // +6.6 MB of native memory per construct/dispose cycle at F = 64 with no GC in between). The scope disposes such
        // temporaries; parameters and buffers are detached from it when registered.
        using var scope = NewDisposeScope();

        init_conv = new ResidualConvBlock(c, f, isRes: true);
        down1 = new UNetDown(f, f);
        down2 = new UNetDown(f, 2 * f);
        to_vec = Sequential(AvgPool2d(new long[] { bottomH, bottomW }), GELU());
        timeembed1 = new EmbedFC(1, 2 * f);
        timeembed2 = new EmbedFC(1, f);
        contextembed1 = new EmbedFC(k, 2 * f);
        contextembed2 = new EmbedFC(k, f);
        up0 = Sequential(
            ConvTranspose2d(2 * f, 2 * f, (bottomH, bottomW), stride: (bottomH, bottomW)),
            GroupNorm(8, 2 * f),
            ReLU());
        up1 = new UNetUp(4 * f, f);
        up2 = new UNetUp(2 * f, f);
        @out = new NoiseOutput(f, c);
        RegisterComponents();
        InitializeGroupNorms();
    }

    /// <summary>The architecture this network was built with.</summary>
    public ConditionalUNetConfig Config { get; }

    /// <summary>
    /// Predicts the noise: <c>Head(Trunk(x), labels, t, contextMask)</c>.
    /// </summary>
    /// <param name="x">Noisy images [B, C, H, W], float.</param>
    /// <param name="labels">Class labels [B], int64, each in [0, Classes).</param>
    /// <param name="t">Normalised timesteps <c>t / n_T</c>, [B] or [B, 1, 1, 1], same dtype as <paramref name="x"/>.</param>
    /// <returns>The predicted noise, same shape as <paramref name="x"/>. The caller owns it.</returns>
    public override Tensor forward(Tensor x, Tensor labels, Tensor t) => forward(x, labels, t, null);

    /// <summary>Predicts the noise with some labels dropped (classifier-free guidance).</summary>
    /// <param name="x">Noisy images [B, C, H, W], float.</param>
    /// <param name="labels">Class labels [B], int64, each in [0, Classes).</param>
    /// <param name="t">Normalised timesteps <c>t / n_T</c>, [B] or [B, 1, 1, 1].</param>
    /// <param name="contextMask">[B], 1 where the label is dropped (unconditional), 0 where it is kept; null keeps all.</param>
    /// <returns>The predicted noise, same shape as <paramref name="x"/>. The caller owns it.</returns>
    public Tensor forward(Tensor x, Tensor labels, Tensor t, Tensor? contextMask)
    {
        using var scope = NewDisposeScope();
        using var trunk = Trunk(x);
        return Head(trunk, labels, t, contextMask).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the label-independent part: <c>init_conv</c>, <c>down1</c>, <c>down2</c>, <c>to_vec</c>, <c>up0</c>.</summary>
    /// <param name="x">Noisy images [B, C, H, W], with the dtype and device of the network's weights.</param>
    /// <returns>The activations the head needs. The caller owns (and disposes) them.</returns>
    /// <exception cref="ArgumentException">The shape, dtype or device of <paramref name="x"/> does not fit.</exception>
    internal UNetTrunk Trunk(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        TensorGuard.Shape(x, nameof(x), [-1, Config.InChannels, Config.Height, Config.Width]);
        TensorGuard.Like(x, @out.FinalWeight, nameof(x), "the network's weights");
        using var scope = NewDisposeScope();
        var h = init_conv.call(x);
        var d1 = down1.call(h);
        var d2 = down2.call(d1);
        var u1 = up0.call(to_vec.call(d2));
        return new UNetTrunk(h, d1, d2, u1).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the label-dependent part on a trunk: embeddings, <c>up1</c>, <c>up2</c>, <c>out</c>.</summary>
    /// <param name="trunk">Activations from <see cref="Trunk"/>, batch B.</param>
    /// <param name="labels">Class labels [B], int64, each in [0, Classes).</param>
    /// <param name="t">Normalised timesteps <c>t / n_T</c>, floating point, [B], [B, 1] or [B, 1, 1, 1].</param>
    /// <param name="contextMask">[B], 1 = drop the label; null keeps all labels.</param>
    /// <returns>The predicted noise [B, C, H, W]. The caller owns it.</returns>
    /// <exception cref="ArgumentException">A shape or dtype does not match the trunk.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A label lies outside [0, Classes).</exception>
    internal Tensor Head(UNetTrunk trunk, Tensor labels, Tensor t, Tensor? contextMask = null)
    {
        ArgumentNullException.ThrowIfNull(trunk);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(t);
        long b = trunk.BatchSize;
        TensorGuard.Shape(labels, nameof(labels), [b]);
        TensorGuard.DType(labels, nameof(labels), ScalarType.Int64);
        TensorGuard.Shape(t, nameof(t), [b], [b, 1], [b, 1, 1, 1]);
        TensorGuard.FloatingPoint(t, nameof(t));
        if (contextMask is not null)
            TensorGuard.Shape(contextMask, nameof(contextMask), [b], [b, 1]);

        using var scope = NewDisposeScope();
        if (b > 0)
        {
            // one_hot would fail with a native error (or, on some devices, not at all) on an out-of-range label.
            long min = labels.min().item<long>(), max = labels.max().item<long>();
            if (min < 0 || max >= Config.Classes)
                throw new ArgumentOutOfRangeException(nameof(labels), min < 0 ? min : max,
                    $"Labels must lie in [0, {Config.Classes}); got values from {min} to {max}.");
        }
        long f = Config.Features;
        var dtype = trunk.H.dtype;
        var device = trunk.H.device;
        // A kept label enters as the NEGATED one-hot and a dropped label as zeros, exactly as the reference.
        var keep = contextMask is null
            ? full(new[] { b, 1L }, TorchScalars.MinusOne, dtype, device)
            : contextMask.reshape(b, 1).to(dtype, device).add(TorchScalars.MinusOne, TorchScalars.One);
        var onehot = functional.one_hot(labels.to(device), Config.Classes).to(dtype) * keep;
        var tt = t.reshape(b, 1).to(dtype, device);

        var cemb1 = contextembed1.call(onehot).view(-1, 2 * f, 1, 1);
        var temb1 = timeembed1.call(tt).view(-1, 2 * f, 1, 1);
        var cemb2 = contextembed2.call(onehot).view(-1, f, 1, 1);
        var temb2 = timeembed2.call(tt).view(-1, f, 1, 1);

        // Explicit alphas: see TorchScalars.
        var u2 = up1.call(cemb1.mul(trunk.U1).add(temb1, TorchScalars.One), trunk.D2);
        var u3 = up2.call(cemb2.mul(u2).add(temb2, TorchScalars.One), trunk.D1);
        return @out.call(cat([u3, trunk.H], 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One initialisation pass over the built network, as TorchVision's ResNet does: every GroupNorm gets PyTorch's
    /// weight 1 and bias 0, which TorchSharp 0.107 leaves uninitialised (docs/torchsharp-defects.md, defect 2).
    /// </summary>
    private void InitializeGroupNorms()
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            if (module is GroupNorm norm)
            {
                norm.weight!.fill_(1.0);
                norm.bias!.fill_(0.0);
            }
        }
    }
}
