using DiffusionClassifier.Modules;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>The label-independent trunk plus the label-dependent head equal the full forward pass (eval mode).</summary>
public class ConditionalUNetTrunkHeadTests(ITestOutputHelper output)
{
    private static ConditionalUNet CreateNet(ConditionalUNetConfig config, Generator g)
    {
        var net = new ConditionalUNet(config);
        Randomize(net, g);
        net.eval();
        return net;
    }

    [Theory]
    [InlineData(1, 8, 8)]
    [InlineData(1, 32, 28)]
    [InlineData(3, 16, 12)]
    public void TrunkPlusHead_EqualsForward(int channels, int features, int side)
    {
        var g = new Generator(11);
        using var net = CreateNet(new ConditionalUNetConfig(channels, features, 10, side, side), g);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { 5, channels, side, side }, generator: g);
        var labels = tensor(new long[] { 0, 9, 4, 4, 2 });
        var t = rand(new long[] { 5, 1, 1, 1 }, generator: g);
        var mask = tensor(new float[] { 0, 0, 1, 0, 1 });

        var full = net.forward(x, labels, t, mask);
        using var trunk = net.Trunk(x);
        Assert.Equal(new long[] { 5, features, side, side }, trunk.H.shape);
        Assert.Equal(new long[] { 5, features, side / 2, side / 2 }, trunk.D1.shape);
        Assert.Equal(new long[] { 5, 2 * features, side / 4, side / 4 }, trunk.D2.shape);
        Assert.Equal(new long[] { 5, 2 * features, side / 4, side / 4 }, trunk.U1.shape);
        var split = net.Head(trunk, labels, t, mask);
        // Same operations on the same batch: bit-identical.
        Assert.True(BitEqual(split, full), $"max difference {(split - full).abs().max().item<float>():E2}");
    }

    [Fact]
    public void HeadOnRepeatedTrunk_EqualsForwardOnRepeatedImages()
    {
        var g = new Generator(12);
        const int b = 3, k = 4, side = 12;
        using var net = CreateNet(new ConditionalUNetConfig(1, 16, 10, side, side), g);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { b, 1, side, side }, generator: g);
        var t = rand(new long[] { b }, generator: g);
        // Every image with k different labels (row i * k + j is image i, label labels[i * k + j]).
        var labels = randint(0, 10, new long[] { b * k }, generator: g);
        var tRepeated = t.repeat_interleave(k, 0);

        using var trunk = net.Trunk(x);
        using var repeated = trunk.RepeatInterleave(k);
        Assert.Equal(b * k, repeated.BatchSize);
        var viaTrunk = net.Head(repeated, labels, tRepeated);
        var direct = net.forward(x.repeat_interleave(k, 0), labels, tRepeated);
        double error = RelativeMaxError(viaTrunk, direct);
        output.WriteLine($"RepeatInterleave: relative error {error:E2}");
        // Convolutions over a different batch size may sum in another order: allow float32 rounding.
        Assert.True(error < 1e-6, $"relative error {error:E2}");
    }

    [Fact]
    public void HeadOnSelectedTrunk_EqualsForwardOnSelectedImages()
    {
        var g = new Generator(13);
        const int side = 8;
        using var net = CreateNet(new ConditionalUNetConfig(1, 8, 10, side, side), g);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { 3, 1, side, side }, generator: g);
        var index = tensor(new long[] { 2, 0, 0, 1, 2, 2 });
        var labels = tensor(new long[] { 1, 5, 6, 1, 9, 0 });
        var t = rand(new long[] { 6 }, generator: g);
        var mask = tensor(new float[] { 0, 1, 0, 0, 0, 1 });

        using var trunk = net.Trunk(x);
        using var selected = trunk.Select(index);
        var viaTrunk = net.Head(selected, labels, t, mask);
        var direct = net.forward(x.index_select(0, index), labels, t, mask);
        double error = RelativeMaxError(viaTrunk, direct);
        output.WriteLine($"Select: relative error {error:E2}");
        Assert.True(error < 1e-6, $"relative error {error:E2}");
        // Rows that share an image and differ only in the label must differ.
        Assert.False(viaTrunk[4].allclose(viaTrunk[5]));
    }

    [Fact]
    public void Trunk_DoesNotDependOnTheLabel_ButHeadDoes()
    {
        var g = new Generator(14);
        using var net = CreateNet(new ConditionalUNetConfig(1, 8, 10, 8, 8), g);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { 2, 1, 8, 8 }, generator: g);
        var t = tensor(new float[] { 0.1f, 0.9f });
        using var trunk = net.Trunk(x);
        var a = net.Head(trunk, tensor(new long[] { 1, 2 }), t);
        var b = net.Head(trunk, tensor(new long[] { 3, 2 }), t);
        Assert.False(a[0].allclose(b[0]));
        Assert.True(BitEqual(a[1], b[1]), "the head must treat each row independently in eval mode");
    }

    [Fact]
    public void Trunk_OwnsItsTensors_AfterTheCallersScope()
    {
        var g = new Generator(15);
        using var net = CreateNet(new ConditionalUNetConfig(1, 8, 10, 8, 8), g);
        using var noGrad = no_grad();
        using var x = randn(new long[] { 2, 1, 8, 8 }, generator: g);
        UNetTrunk trunk;
        using (NewDisposeScope())
            trunk = net.Trunk(x).DetachFromDisposeScope();
        using (trunk)
        using (var labels = tensor(new long[] { 1, 2 }))
        using (var t = tensor(new float[] { 0.5f, 0.5f }))
        using (var y = net.Head(trunk, labels, t))
            Assert.Equal(x.shape, y.shape);
        Assert.True(trunk.H.IsInvalid, "disposing the trunk must dispose its tensors");
    }
}
