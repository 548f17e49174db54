using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>Small, seeded networks for fast tests.</summary>
internal static class TinyModels
{
    /// <summary>A configuration small enough for millisecond forwards: F = 8, 8x8 images.</summary>
    public static ConditionalUNetConfig Config(int features = 8, int classes = 10, int side = 8, int channels = 1) =>
        new(channels, features, classes, side, side);

    /// <summary>A network with seeded initial weights.</summary>
    public static ConditionalUNet Create(ConditionalUNetConfig? config = null, long seed = 1234)
    {
        lock (SeedLock)
        {
            // Module initialisation draws from the global generator: serialise it for reproducibility.
            manual_seed(seed);
            return new ConditionalUNet(config ?? Config());
        }
    }

    /// <summary>
    /// Scales <paramref name="model"/>'s output layer and embeddings up (in place) so that eps_hat is as large as eps
    /// and depends clearly on the label and t: with PyTorch's initialisation the error barely depends on t (and little
    /// on the label), and a test would not notice a mistake there.
    /// </summary>
    /// <returns>The same model.</returns>
    public static ConditionalUNet Loud(ConditionalUNet model)
    {
        using var mode = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (name.StartsWith("out.3.", StringComparison.Ordinal) || name.StartsWith("timeembed", StringComparison.Ordinal)
                || name.StartsWith("contextembed", StringComparison.Ordinal))
                p.mul_(3);
        return model;
    }

    private static readonly object SeedLock = new();
}
