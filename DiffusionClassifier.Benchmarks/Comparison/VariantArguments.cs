using System.CommandLine;

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

    /// <summary>Parses <paramref name="args"/> (System.CommandLine); <paramref name="defaults"/> names every option the
    /// mode takes, each a non-negative integer.</summary>
    /// <exception cref="ArgumentException">An unknown option, an option without a non-negative integer, or a bad spec.</exception>
    public static VariantArguments Parse(IReadOnlyList<string> args, IReadOnlyDictionary<string, int> defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        var options = defaults.ToDictionary(p => p.Key, p => ArgumentParsing.Int(p.Key, p.Key.TrimStart('-'), p.Value, 0));
        var specs = new Argument<VariantSpec[]>("specs")
        {
            Description = "Variant specs: Float32 | ChannelsLast | BFloat16 | ChannelsLastBFloat16, each optionally ':fold'.",
            Arity = ArgumentArity.ZeroOrMore,
            CustomParser = result =>
            {
                var parsed = new List<VariantSpec>();
                foreach (var token in result.Tokens)
                {
                    var parts = token.Value.Split(':');
                    if (ArgumentParsing.EnumName<ForwardVariant>(parts[0]) is not { } variant || parts.Skip(1).Any(p => p != "fold"))
                    {
                        result.AddError($"'{token.Value}' is not a variant spec (e.g. Float32, ChannelsLastBFloat16:fold).");
                        return [];
                    }
                    parsed.Add(new VariantSpec(token.Value, variant, parts.Contains("fold")));
                }
                return parsed.ToArray();
            },
        };
        var command = new RootCommand { specs };
        foreach (var option in options.Values)
            command.Options.Add(option);
        var result = ArgumentParsing.Parse(command, args, "");
        return new VariantArguments(options.ToDictionary(p => p.Key, p => result.GetValue(p.Value)), [.. result.GetValue(specs) ?? []]);
    }
}
