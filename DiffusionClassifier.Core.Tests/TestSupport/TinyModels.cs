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

    private static readonly object SeedLock = new();
}
