using System.Globalization;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>A forward variant spec on the command line: <c>ChannelsLastBFloat16</c> or <c>ChannelsLastBFloat16:fold</c>.</summary>
/// <param name="Name">The spec as given.</param>
/// <param name="Variant">The variant.</param>
/// <param name="Fold">Whether BatchNorm is folded into the convolutions (<see cref="ForwardVariants.FoldBatchNorm"/>).</param>
public sealed record VariantSpec(string Name, ForwardVariant Variant, bool Fold);

/// <summary>
/// The arguments of the <c>profile</c> and <c>variants</c> modes: <c>--name value</c> options with non-negative
/// integer values, every other argument a <see cref="VariantSpec"/>.
/// </summary>
public sealed class VariantArguments
{
    private readonly Dictionary<string, int> values;

    private VariantArguments(Dictionary<string, int> values, List<VariantSpec> specs)
    {
        this.values = values;
        Specs = specs;
    }

    /// <summary>The variant specs, in order.</summary>
    public IReadOnlyList<VariantSpec> Specs { get; }

    /// <summary>The value of an option (its default when not given).</summary>
    public int this[string option] => values[option];

    /// <summary>Parses <paramref name="args"/>; <paramref name="defaults"/> names every option the mode takes.</summary>
    /// <exception cref="ArgumentException">An unknown option, an option without a non-negative integer, or a bad spec.</exception>
    public static VariantArguments Parse(IReadOnlyList<string> args, IReadOnlyDictionary<string, int> defaults)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(defaults);
        var values = new Dictionary<string, int>(defaults);
        var specs = new List<VariantSpec>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (!values.ContainsKey(a))
                    throw new ArgumentException($"Unknown option {a}.", nameof(args));
                if (!(i + 1 < args.Count && int.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 0))
                    throw new ArgumentException($"Option {a} needs a non-negative integer.", nameof(args));
                values[a] = v;
                continue;
            }
            var parts = a.Split(':');
            if (!Enum.TryParse<ForwardVariant>(parts[0], true, out var variant) || !Enum.IsDefined(variant) || int.TryParse(parts[0], out _)
                || parts.Skip(1).Any(p => p != "fold"))
                throw new ArgumentException($"'{a}' is not a variant spec (e.g. Float32, ChannelsLastBFloat16:fold).", nameof(args));
            specs.Add(new VariantSpec(a, variant, parts.Contains("fold")));
        }
        return new VariantArguments(values, specs);
    }
}
