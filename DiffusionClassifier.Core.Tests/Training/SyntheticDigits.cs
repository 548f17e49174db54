using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Training;

/// <summary>Small MNIST-shaped training sets with class-dependent patterns, seeded.</summary>
internal static class SyntheticDigits
{
    /// <summary>
    /// <paramref name="count"/> images [N, 1, side, side] in [0, 1]: class k is a bright 2x2 block at one of ten fixed
    /// places (k-dependent) on a faint random background, labels cycling 0..classes-1. The caller owns the tensors.
    /// </summary>
    public static (Tensor Images, Tensor Labels) Create(int count, int side = 8, int classes = 10, long seed = 5)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var background = rand(new long[] { count, 1, side, side }, generator: g) * 0.1f;
        var labels = arange(count, ScalarType.Int64) % classes;
        var data = background.data<float>().ToArray();
        for (int i = 0; i < count; i++)
        {
            int k = i % classes;
            int row = (k % 3) * (side / 3), col = (k / 3) * (side / 4);
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++)
                    data[((long)i * side + row + dy) * side + col + dx] = 0.9f;
        }
        var images = tensor(data, new long[] { count, 1, side, side });
        return (images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>Uniform random images and labels (for tests that only need the right shapes).</summary>
    public static (Tensor Images, Tensor Labels) Random(int count, int side = 8, int classes = 10, long seed = 6)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var images = rand(new long[] { count, 1, side, side }, generator: g);
        var labels = randint(0, classes, new long[] { count }, generator: g);
        return (images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
