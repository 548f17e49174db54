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
    public static long? ElementCount(ConditionalUNetConfig config)
    {
        try
        {
            checked
            {
                long c = config.InChannels, f = config.Features, k = config.Classes, h = config.Height / 4, w = config.Width / 4;
                // Conv3x3 + BatchNorm (weight, bias, running mean, running var, num_batches_tracked), twice.
                long Block(long i, long o) => 9 * i * o + o + 4 * o + 1 + 9 * o * o + o + 4 * o + 1;
                long Embed(long i, long e) => i * e + e + e * e + e;
                long Up(long i, long o) => i * o * 4 + o + 2 * Block(o, o);
                long total = Block(c, f) + Block(f, f) + Block(f, 2 * f)
                    + Embed(1, 2 * f) + Embed(1, f) + Embed(k, 2 * f) + Embed(k, f)
                    + 2 * f * 2 * f * h * w + 2 * f + 2 * 2 * f
                    + Up(4 * f, f) + Up(2 * f, f)
                    + 9 * 2 * f * f + f + 2 * f + 9 * f * c + c;
                return total;
            }
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
