using DiffusionClassifier.Modules;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>The module's forward pass against <see cref="ReferenceContextUnet"/>, an independent float64 implementation.</summary>
public class ConditionalUNetReferenceForwardTests(ITestOutputHelper output)
{
    public static TheoryData<int, int, int, int, int> Configs => new()
    {
        // channels, features, classes, height, width
        { 1, 8, 10, 8, 8 },
        { 1, 32, 10, 28, 28 },   // the MNIST network at F = 32
        { 3, 16, 5, 16, 12 },    // colour, non-square, fewer classes
        { 8, 8, 4, 8, 8 },       // C == F: init_conv's residual adds its input (x + x2)
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Forward_MatchesTheFloat64Reference(int channels, int features, int classes, int height, int width)
    {
        var config = new ConditionalUNetConfig(channels, features, classes, height, width);
        var g = new Generator(42);
        using var net = new ConditionalUNet(config);
        Randomize(net, g);
        net.eval();
        using var reference = new ReferenceContextUnet(net);
        using var net64 = CopyAsFloat64(net);
        net64.eval();

        using var scope = NewDisposeScope();
        const int b = 6;
        var x = randn(new long[] { b, channels, height, width }, generator: g);
        var c = randint(0, classes, new long[] { b }, generator: g);
        var t = rand(new long[] { b }, generator: g);
        var mask = tensor(new float[] { 0, 1, 0, 0, 1, 0 });

        var expected = reference.Forward(x, c, t, mask);
        Assert.True(expected.abs().max().item<double>() > 0.1, "the reference output is too small to compare against");
        Tensor actual32, actual64;
        using (no_grad())
        {
            actual32 = net.forward(x, c, t, mask);
            actual64 = net64.forward(x.to(float64), c, t.to(float64), mask.to(float64));
        }
        double e32 = RelativeMaxError(actual32, expected), e64 = RelativeMaxError(actual64, expected);
        output.WriteLine($"C={channels} F={features} K={classes} {height}x{width}: float32 {e32:E2}, float64 {e64:E2}");
        Assert.Equal(ScalarType.Float32, actual32.dtype);
        Assert.Equal(x.shape, actual32.shape);
        Assert.True(e32 < 1e-4, $"float32 module vs float64 reference: relative error {e32:E2}");
        Assert.True(e64 < 1e-10, $"float64 module vs float64 reference: relative error {e64:E2}");
    }

    [Fact]
    public void ContextMask_DropsTheLabel_AndAKeptLabelIsTheNegatedOneHot()
    {
        var config = new ConditionalUNetConfig(1, 8, 10, 8, 8);
        var g = new Generator(7);
        using var net = new ConditionalUNet(config);
        Randomize(net, g);
        net.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { 1, 1, 8, 8 }, generator: g).expand(4, 1, 8, 8).contiguous();
        var labels = tensor(new long[] { 3, 7, 3, 7 });
        var t = full(new long[] { 4 }, 0.25f);

        // Dropped: the label does not matter, and the result equals a null context mask with no label information.
        var dropped = net.forward(x, labels, t, ones(4));
        Assert.True(BitEqual(dropped[0], dropped[1]), "with mask = 1 the output must not depend on the label");
        var kept = net.forward(x, labels, t, zeros(4));
        Assert.False(kept[0].allclose(kept[1]), "with mask = 0 the label must change the output");
        Assert.True(BitEqual(kept, net.forward(x, labels, t)), "a null mask must keep every label");

        // The one-hot's sign matters: rebuilding the head with +one-hot in the reference gives a different output.
        using var reference = new ReferenceContextUnet(net);
        var negated = reference.Forward(x, labels, t, zeros(4));
        Assert.True(RelativeMaxError(kept, negated) < 1e-4);
        // mask = 2 gives one_hot * (-(1 - 2)) = +one_hot in the reference formula: a positive one-hot.
        var positive = reference.Forward(x, labels, t, full(new long[] { 4 }, 2.0f));
        Assert.True(RelativeMaxError(kept, positive) > 1e-3, "a positive one-hot should give a different output");
    }
}
