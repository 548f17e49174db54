using DiffusionClassifier.Modules;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// The number of elements in a <see cref="ConditionalUNet"/> state_dict, computed from the configuration alone, so
/// that a file's claimed architecture can be checked against the tensors it actually holds before the network is
/// allocated (a damaged or hostile configuration could otherwise ask for terabytes).
/// </summary>
internal static class StateDictBudget
{
    /// <summary>
    /// Whether a network of <paramref name="needed"/> elements may be built from a file holding
    /// <paramref name="present"/>: generous enough that a few missing or wrong-shaped tensors are still reported by
    /// name by the key-by-key check, tight enough that a damaged configuration cannot allocate much beyond the file.
    /// </summary>
    public static bool Allows(long? needed, long present) =>
        needed is long n && n <= 4 * present + (1L << 24);

    /// <summary>Elements of all parameters and buffers of the network for <paramref name="config"/>; null if it overflows.</summary>
    /// <param name="config">A configuration (not necessarily valid).</param>
    public static long? ElementCount(ConditionalUNetConfig config) => config.StateElementCount();
}
