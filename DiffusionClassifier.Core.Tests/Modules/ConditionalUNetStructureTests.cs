using DiffusionClassifier.Modules;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>State-dict keys, shapes, parameter counts and initialisation against docs/algorithm.md §1.</summary>
public class ConditionalUNetStructureTests
{
    /// <summary>
    /// The reference's network keys (without <c>nn_model.</c>), written out from the layer list of docs/algorithm.md §1,
    /// not from our modules.
    /// </summary>
    private static List<string> ExpectedKeys()
    {
        var keys = new List<string>();
        void Linear(string p) { keys.Add(p + ".weight"); keys.Add(p + ".bias"); }
        void BatchNorm(string p)
        {
            Linear(p);
            keys.Add(p + ".running_mean"); keys.Add(p + ".running_var"); keys.Add(p + ".num_batches_tracked");
        }
        void Residual(string p)
        {
            Linear(p + ".conv1.0"); BatchNorm(p + ".conv1.1");
            Linear(p + ".conv2.0"); BatchNorm(p + ".conv2.1");
        }
        void Embed(string p) { Linear(p + ".model.0"); Linear(p + ".model.2"); }

        Residual("init_conv");
        Residual("down1.model.0");
        Residual("down2.model.0");
        Embed("timeembed1"); Embed("timeembed2"); Embed("contextembed1"); Embed("contextembed2");
        Linear("up0.0"); Linear("up0.1");
        foreach (var up in new[] { "up1", "up2" })
        {
            Linear(up + ".model.0");
            Residual(up + ".model.1");
            Residual(up + ".model.2");
        }
        Linear("out.0"); Linear("out.1"); Linear("out.3");
        return keys;
    }

    [Fact]
    public void StateDictKeys_EqualTheReferenceKeys()
    {
        using var net = new ConditionalUNet(ConditionalUNetConfig.Mnist(32));
        var expected = ExpectedKeys();
        // 128 network entries: the 135 of a reference checkpoint minus its 7 schedule buffers (docs/model-files.md).
        Assert.Equal(128, expected.Count);
        var actual = net.state_dict().Keys.ToList();
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.OrderBy(k => k, StringComparer.Ordinal), actual.OrderBy(k => k, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(32, 414_529)]
    [InlineData(64, 1_650_305)]
    [InlineData(128, 6_585_601)]
    public void ParameterCount_MatchesTheReference(int features, long expected)
    {
        using var net = new ConditionalUNet(ConditionalUNetConfig.Mnist(features));
        long count = net.parameters().Sum(p => p.numel());
        Assert.Equal(expected, count);
    }

    [Fact]
    public void Shapes_FollowTheReferenceLayers()
    {
        const int f = 32, c = 3, k = 7;
        using var net = new ConditionalUNet(new ConditionalUNetConfig(c, f, k, 28, 28));
        var sd = net.state_dict();
        void Shape(string key, params long[] shape) => Assert.Equal(shape, sd[key].shape);

        Shape("init_conv.conv1.0.weight", f, c, 3, 3);
        Shape("init_conv.conv1.1.running_var", f);
        Shape("down2.model.0.conv1.0.weight", 2 * f, f, 3, 3);
        Shape("down2.model.0.conv2.0.weight", 2 * f, 2 * f, 3, 3);
        Shape("timeembed1.model.0.weight", 2 * f, 1);
        Shape("timeembed2.model.2.weight", f, f);
        Shape("contextembed1.model.0.weight", 2 * f, k);
        Shape("contextembed2.model.0.weight", f, k);
        // ConvTranspose2d weights are [in, out, kH, kW].
        Shape("up0.0.weight", 2 * f, 2 * f, 7, 7);
        Shape("up0.1.weight", 2 * f);
        Shape("up1.model.0.weight", 4 * f, f, 2, 2);
        Shape("up2.model.0.weight", 2 * f, f, 2, 2);
        Shape("up2.model.2.conv2.0.weight", f, f, 3, 3);
        Shape("out.0.weight", f, 2 * f, 3, 3);
        Shape("out.1.bias", f);
        Shape("out.3.weight", c, f, 3, 3);
        Shape("out.3.bias", c);
        Assert.Equal(ScalarType.Int64, sd["down1.model.0.conv2.1.num_batches_tracked"].dtype);
    }

    [Fact]
    public void Up0Kernel_FollowsTheImageSize()
    {
        using var net = new ConditionalUNet(new ConditionalUNetConfig(1, 8, 10, 16, 12));
        Assert.Equal(new long[] { 16, 16, 4, 3 }, net.state_dict()["up0.0.weight"].shape);
    }

    [Fact]
    public void GroupNorms_StartAtWeightOneAndBiasZero()
    {
        // Several constructions: TorchSharp's own GroupNorm leaves garbage that is sometimes 1/0 by chance.
        for (int i = 0; i < 5; i++)
        {
            using var net = new ConditionalUNet(new ConditionalUNetConfig(1, 8 * (i + 1), 10, 8, 8));
            var norms = net.named_modules().Where(m => m.module is GroupNorm).ToList();
            Assert.Equal(new[] { "out.1", "up0.1" }, norms.Select(m => m.name).Order(StringComparer.Ordinal));
            foreach (var (name, module) in norms)
            {
                var norm = (GroupNorm)module;
                Assert.True(norm.weight!.eq(1).all().item<bool>(), $"{name}.weight is not all 1");
                Assert.True(norm.bias!.eq(0).all().item<bool>(), $"{name}.bias is not all 0");
            }
        }
    }

    [Fact]
    public void OtherLayers_AreInitialisedFinite()
    {
        using var net = new ConditionalUNet(ConditionalUNetConfig.Mnist(32));
        foreach (var (name, t) in net.state_dict())
        {
            if (t.is_floating_point())
            {
                Assert.True(t.isfinite().all().item<bool>(), $"{name} has non-finite values");
                Assert.True(t.abs().max().item<float>() < 10, $"{name} has implausibly large initial values");
            }
        }
    }
}
