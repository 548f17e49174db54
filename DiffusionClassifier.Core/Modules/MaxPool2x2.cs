using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// 2x2 max pooling with stride 2 (the reference's <c>nn.MaxPool2d(2)</c>), computed without autograd as two
/// element-wise maxima over a reshaped view.
/// </summary>
/// <remarks>
/// libtorch 2.10's CPU <c>max_pool2d</c> took 8.9% (float32) and 17.4% (bfloat16) of the F = 32 forward here
/// (<c>DiffusionClassifier.Benchmarks -- profile</c>, docs/performance.md); two element-wise maxima give bit-identical
/// values (a maximum is exact) and left the profile's table. While gradients are
/// recorded, or for odd sizes, the module runs <c>MaxPool2d(2)</c> itself, so training keeps the reference's
/// backward (the gradient of a tie goes to one element, not half to each).
/// <para>Thread safety: stateless; safe for concurrent forwards.</para>
/// </remarks>
internal sealed class MaxPool2x2 : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.MaxPool2d pool;

    /// <summary>Creates the module.</summary>
    public MaxPool2x2() : base(nameof(MaxPool2x2))
    {
        pool = MaxPool2d(2);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[2] % 2 != 0 || x.shape[3] % 2 != 0 || (is_grad_enabled() && x.requires_grad))
            return pool.call(x);
        long h = x.shape[2], w = x.shape[3];
        using var scope = NewDisposeScope();
        var v = x.view(x.shape[0], x.shape[1], h / 2, 2, w / 2, 2);
        var rows = v.select(3, 0).maximum(v.select(3, 1));
        return rows.select(4, 0).maximum(rows.select(4, 1)).MoveToOuterDisposeScope();
    }
}
