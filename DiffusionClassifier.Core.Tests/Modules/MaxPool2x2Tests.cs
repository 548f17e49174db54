using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

public class MaxPool2x2Tests
{
    [Theory]
    [InlineData(ScalarType.Float32, 3, 28, 28)]
    [InlineData(ScalarType.Float64, 2, 14, 6)]
    [InlineData(ScalarType.BFloat16, 4, 8, 8)]
    public void WithoutGradientsItEqualsMaxPool2dBitForBit(ScalarType dtype, long channels, long h, long w)
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 5, channels, h, w }, generator: new Generator(3)).to(dtype);
        x[0, 0, 0, 0] = float.NaN; // NaN propagates as in max_pool2d
        x[1, 0, 0, 0] = x[1, 0, 0, 1]; // a tie
        using var pool = new MaxPool2x2();
        using var reference = nn.MaxPool2d(2);
        Tensor fast;
        using (no_grad())
            fast = pool.call(x);
        var expected = reference.call(x);
        Assert.Equal(expected.shape, fast.shape);
        Assert.True(fast.isnan().equal(expected.isnan()).all().item<bool>());
        Assert.True(fast.nan_to_num(0).equal(expected.nan_to_num(0)).all().item<bool>());
        Assert.Equal(1, fast[0, 0, 0, 0].isnan().sum().item<long>());
    }

    [Fact]
    public void OddSizesAndRecordedGradientsUseMaxPool2d()
    {
        using var scope = NewDisposeScope();
        using var pool = new MaxPool2x2();
        using var reference = nn.MaxPool2d(2);
        var odd = randn(2, 3, 7, 9);
        using (no_grad())
            Assert.True(pool.call(odd).equal(reference.call(odd)).all().item<bool>());
        // With autograd the gradient of a tie goes to one element (MaxPool2d's backward), as in the reference.
        var x = ones(1, 1, 2, 2).requires_grad_();
        pool.call(x).sum().backward();
        var y = ones(1, 1, 2, 2).requires_grad_();
        reference.call(y).sum().backward();
        Assert.True(x.grad!.equal(y.grad!).all().item<bool>());
        Assert.Equal(1.0, x.grad!.sum().item<float>());
    }
}
