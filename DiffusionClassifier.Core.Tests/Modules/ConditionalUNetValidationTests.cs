using DiffusionClassifier.Modules;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>Configuration and input validation of <see cref="ConditionalUNet"/>.</summary>
public class ConditionalUNetValidationTests
{
    [Theory]
    [InlineData(0, 8, 10, 8, 8, "InChannels", 0)]
    [InlineData(-1, 8, 10, 8, 8, "InChannels", -1)]
    [InlineData(1, 0, 10, 8, 8, "Features", 0)]
    [InlineData(1, 12, 10, 8, 8, "Features", 12)]
    [InlineData(1, -8, 10, 8, 8, "Features", -8)]
    [InlineData(1, 8, 0, 8, 8, "Classes", 0)]
    [InlineData(1, 8, 10, 0, 8, "Height", 0)]
    [InlineData(1, 8, 10, 10, 8, "Height", 10)]
    [InlineData(1, 8, 10, 8, 6, "Width", 6)]
    [InlineData(1, 8, 10, 8, -4, "Width", -4)]
    public void InvalidConfig_Throws_NamingTheParameterAndValue(int c, int f, int k, int h, int w, string parameter, int value)
    {
        var config = new ConditionalUNetConfig(c, f, k, h, w);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(config.Validate);
        Assert.Equal(parameter, ex.ParamName);
        Assert.Equal(value, ex.ActualValue);
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ConditionalUNet(config));
        Assert.Equal(parameter, ex.ParamName);
    }

    [Fact]
    public void NullConfig_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => new ConditionalUNet(null!));
    }

    [Theory]
    [InlineData(1, 4, 4)]
    [InlineData(1, 8, 8)]
    [InlineData(2, 16, 12)]
    [InlineData(1, 12, 20)]
    [InlineData(3, 32, 32)]
    public void NonMnistSizes_Work(int channels, int height, int width)
    {
        using var net = new ConditionalUNet(new ConditionalUNetConfig(channels, 8, 3, height, width));
        net.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = rand(2, channels, height, width);
        var y = net.forward(x, tensor(new long[] { 0, 2 }), tensor(new float[] { 0.1f, 0.7f }));
        Assert.Equal(x.shape, y.shape);
        Assert.True(y.isfinite().all().item<bool>());
    }

    private static ConditionalUNet Tiny() => new(new ConditionalUNetConfig(1, 8, 10, 8, 8));

    [Theory]
    [InlineData(new long[] { 2, 1, 8 })]
    [InlineData(new long[] { 2, 3, 8, 8 })]
    [InlineData(new long[] { 2, 1, 8, 12 })]
    [InlineData(new long[] { 2, 1, 12, 8 })]
    [InlineData(new long[] { 1, 2, 1, 8, 8 })]
    public void Trunk_WrongShape_Throws(long[] shape)
    {
        using var net = Tiny();
        using var x = zeros(shape);
        var ex = Assert.Throws<ArgumentException>(() => net.Trunk(x));
        Assert.Equal("x", ex.ParamName);
        Assert.Contains("[B, 1, 8, 8]", ex.Message);
        Assert.Contains(string.Join(", ", shape), ex.Message);
    }

    [Fact]
    public void Trunk_WrongDtype_Throws()
    {
        using var net = Tiny();
        using var x = zeros(new long[] { 2, 1, 8, 8 }, float64);
        var ex = Assert.Throws<ArgumentException>(() => net.Trunk(x));
        Assert.Equal("x", ex.ParamName);
        Assert.Contains("Float64", ex.Message);
        Assert.Throws<ArgumentNullException>(() => net.Trunk(null!));
    }

    [Fact]
    public void Head_BadLabels_Throw()
    {
        using var net = Tiny();
        using var scope = NewDisposeScope();
        using var trunk = net.Trunk(zeros(2, 1, 8, 8));
        var t = tensor(new float[] { 0.5f, 0.5f });

        var ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, tensor(new int[] { 1, 2 }), t));
        Assert.Equal("labels", ex.ParamName);
        Assert.Contains("Int32", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, tensor(new float[] { 1, 2 }), t));
        Assert.Equal("labels", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, tensor(new long[] { 1, 2, 3 }), t));
        Assert.Equal("labels", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, tensor(new long[] { 1, 2 }).reshape(2, 1), t));
        Assert.Equal("labels", ex.ParamName);

        var range = Assert.Throws<ArgumentOutOfRangeException>(() => net.Head(trunk, tensor(new long[] { 1, 10 }), t));
        Assert.Equal("labels", range.ParamName);
        Assert.Equal(10L, range.ActualValue);
        Assert.Contains("10", range.Message);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => net.Head(trunk, tensor(new long[] { -3, 1 }), t));
        Assert.Equal(-3L, range.ActualValue);
        // forward validates the same way.
        range = Assert.Throws<ArgumentOutOfRangeException>(() => net.forward(zeros(2, 1, 8, 8), tensor(new long[] { 0, 11 }), t));
        Assert.Equal("labels", range.ParamName);
    }

    [Fact]
    public void Head_BadTimestepsOrMask_Throw()
    {
        using var net = Tiny();
        using var scope = NewDisposeScope();
        using var trunk = net.Trunk(zeros(2, 1, 8, 8));
        var labels = tensor(new long[] { 1, 2 });

        var ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, labels, tensor(new float[] { 0.5f })));
        Assert.Equal("t", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, labels, tensor(new long[] { 200, 300 })));
        Assert.Equal("t", ex.ParamName);
        Assert.Contains("Int64", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => net.Head(trunk, labels, tensor(new float[] { 0.5f, 0.5f }), zeros(3)));
        Assert.Equal("contextMask", ex.ParamName);
        Assert.Throws<ArgumentNullException>(() => net.Head(null!, labels, tensor(new float[] { 0.5f, 0.5f })));
    }

    [Fact]
    public void Head_AcceptsBoolMask_AndTimestepsShapedB111()
    {
        using var net = Tiny();
        net.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = rand(2, 1, 8, 8);
        var labels = tensor(new long[] { 1, 2 });
        using var trunk = net.Trunk(x);
        var a = net.Head(trunk, labels, tensor(new float[] { 0.3f, 0.6f }), tensor(new[] { false, true }));
        var b = net.Head(trunk, labels, tensor(new float[] { 0.3f, 0.6f }).reshape(2, 1, 1, 1), tensor(new float[] { 0, 1 }));
        Assert.True(BitEqual(a, b));
    }
}
