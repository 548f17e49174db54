using DiffusionClassifier.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>
/// An independent float64 re-implementation of the reference <c>ContextUnet</c> forward pass in eval mode, written
/// from docs/algorithm.md §1 as plain functions over a state dict (looked up by the reference's key names). BatchNorm,
/// GroupNorm and GELU are written out by hand; convolutions, pooling and linear layers use torch's functional ops.
/// </summary>
internal sealed class ReferenceContextUnet : IDisposable
{
    private const double Eps = 1e-5;
    private readonly Dictionary<string, Tensor> w = new();
    private readonly ConditionalUNetConfig config;

    /// <summary>Copies the weights and buffers of <paramref name="net"/> as float64 (owned by this object).</summary>
    public ReferenceContextUnet(ConditionalUNet net)
    {
        config = net.Config;
        foreach (var (key, value) in net.state_dict())
            w[key] = value.detach().to(float64).clone().DetachFromDisposeScope();
    }

    /// <summary>The reference forward: x [B, C, H, W], c int64 [B], t [B] (t / n_T), mask [B] (1 = drop the label).</summary>
    public Tensor Forward(Tensor x, Tensor c, Tensor t, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long f = config.Features, b = x.shape[0];
        x = x.to(float64);
        var h = Residual(x, "init_conv", isRes: true);
        var d1 = Down(h, "down1");
        var d2 = Down(d1, "down2");
        var v = Gelu(F.avg_pool2d(d2, new long[] { config.Height / 4, config.Width / 4 }));

        // one_hot(c) * (-(1 - mask)): a kept label is the NEGATED one-hot, a dropped one all zeros.
        var onehot = F.one_hot(c, config.Classes).to(float64) * (-(1 - mask.to(float64).reshape(b, 1)));
        var tt = t.to(float64).reshape(b, 1);
        var cemb1 = Embed(onehot, "contextembed1").view(-1, 2 * f, 1, 1);
        var temb1 = Embed(tt, "timeembed1").view(-1, 2 * f, 1, 1);
        var cemb2 = Embed(onehot, "contextembed2").view(-1, f, 1, 1);
        var temb2 = Embed(tt, "timeembed2").view(-1, f, 1, 1);

        var up0 = F.conv_transpose2d(v, w["up0.0.weight"], w["up0.0.bias"],
            strides: new long[] { config.Height / 4, config.Width / 4 });
        var u1 = GroupNorm(up0, 8, "up0.1").relu();
        var u2 = Up(cemb1 * u1 + temb1, d2, "up1");
        var u3 = Up(cemb2 * u2 + temb2, d1, "up2");
        var o = GroupNorm(Conv3(cat([u3, h], 1), "out.0"), 8, "out.1").relu();
        return Conv3(o, "out.3").MoveToOuterDisposeScope();
    }

    private Tensor Conv3(Tensor x, string p) =>
        F.conv2d(x, w[p + ".weight"], w[p + ".bias"], strides: new long[] { 1, 1 }, padding: new long[] { 1, 1 });

    private static Tensor Gelu(Tensor x) => 0.5 * x * (1 + (x / Math.Sqrt(2)).erf());

    private Tensor BatchNormEval(Tensor x, string p)
    {
        Tensor C(string name) => w[p + name].reshape(1, -1, 1, 1);
        return (x - C(".running_mean")) / (C(".running_var") + Eps).sqrt() * C(".weight") + C(".bias");
    }

    private Tensor GroupNorm(Tensor x, long groups, string p)
    {
        long b = x.shape[0], ch = x.shape[1];
        var g = x.reshape(b, groups, -1);
        var mean = g.mean(new long[] { 2 }, keepdim: true);
        var variance = (g - mean).pow(2).mean(new long[] { 2 }, keepdim: true);
        var normalised = ((g - mean) / (variance + Eps).sqrt()).reshape(x.shape);
        return normalised * w[p + ".weight"].reshape(1, ch, 1, 1) + w[p + ".bias"].reshape(1, ch, 1, 1);
    }

    private Tensor Residual(Tensor x, string p, bool isRes)
    {
        var x1 = Gelu(BatchNormEval(Conv3(x, p + ".conv1.0"), p + ".conv1.1"));
        var x2 = Gelu(BatchNormEval(Conv3(x1, p + ".conv2.0"), p + ".conv2.1"));
        if (!isRes) return x2;
        bool same = x.shape[1] == x2.shape[1];
        return ((same ? x : x1) + x2) / 1.414;
    }

    private Tensor Down(Tensor x, string p) => F.max_pool2d(Residual(x, p + ".model.0", isRes: false), 2);

    private Tensor Up(Tensor x, Tensor skip, string p)
    {
        var y = F.conv_transpose2d(cat([x, skip], 1), w[p + ".model.0.weight"], w[p + ".model.0.bias"], strides: new long[] { 2, 2 });
        return Residual(Residual(y, p + ".model.1", isRes: false), p + ".model.2", isRes: false);
    }

    private Tensor Embed(Tensor x, string p)
    {
        long inputDim = w[p + ".model.0.weight"].shape[1];
        var hidden = Gelu(F.linear(x.view(-1, inputDim), w[p + ".model.0.weight"], w[p + ".model.0.bias"]));
        return F.linear(hidden, w[p + ".model.2.weight"], w[p + ".model.2.bias"]);
    }

    public void Dispose()
    {
        foreach (var t in w.Values) t.Dispose();
        w.Clear();
    }
}
