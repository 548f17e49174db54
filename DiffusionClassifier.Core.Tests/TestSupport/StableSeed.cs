namespace DiffusionClassifier.Tests.TestSupport;

/// <summary>
/// Seeds that are the same in every process and on every machine, so that a seeded failure can be replayed
/// (string.GetHashCode and HashCode.Combine are randomised per process).
/// </summary>
internal static class StableSeed
{
    /// <summary>The seed of iteration <paramref name="iteration"/> of the run <paramref name="name"/> under the base
    /// seed <paramref name="seed"/>: FNV-1a of the name mixed with both numbers.</summary>
    public static int For(int seed, string name, int iteration)
    {
        uint h = 2166136261;
        foreach (char ch in name) h = (h ^ ch) * 16777619;
        return (int)(h ^ (uint)seed * 2654435761u ^ (uint)iteration * 40503u);
    }
}
