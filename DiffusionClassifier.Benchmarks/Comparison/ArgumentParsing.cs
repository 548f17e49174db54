using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// System.CommandLine pieces for the benchmark modes (<c>compare</c>, <c>variants</c>, <c>profile</c>): options with
/// bounds checked at parse time, and parsing that throws <see cref="ArgumentException"/> with every error.
/// </summary>
internal static class ArgumentParsing
{
    /// <summary>An int option with a default and a lower bound.</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            if (OptionValues.TryGetValue(result, out int value) && value < min)
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"Option {name}: '{value}' is not an integer >= {min}."));
        });
        return option;
    }

    /// <summary>A double option with a default and a lower bound.</summary>
    public static Option<double> Double(string name, string description, double defaultValue, double min)
    {
        var option = new Option<double>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            if (OptionValues.TryGetValue(result, out double value) && !(value >= min && double.IsFinite(value)))
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"Option {name}: '{value}' is not a number >= {min}."));
        });
        return option;
    }

    /// <summary>A comma-separated list (<c>32,64</c>), each item parsed by <paramref name="parse"/> (null = not valid,
    /// with <paramref name="expected"/> in the message).</summary>
    public static Option<T[]?> List<T>(string name, string description, Func<string, T?> parse, string expected, T[]? defaultValue = null)
        where T : struct
    {
        var option = new Option<T[]?>(name)
        {
            Description = description,
            CustomParser = result =>
            {
                var values = new List<T>();
                foreach (var part in result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
                {
                    if (parse(part) is not { } value)
                    {
                        result.AddError($"Option {name}: '{part}' is not {expected}.");
                        return null;
                    }
                    values.Add(value);
                }
                if (values.Count == 0)
                {
                    result.AddError($"Option {name}: empty list.");
                    return null;
                }
                return values.Distinct().ToArray();
            },
        };
        if (defaultValue is not null)
            option.DefaultValueFactory = _ => defaultValue;
        return option;
    }

    /// <summary>An integer of at least <paramref name="min"/>, or null.</summary>
    public static Func<string, int?> IntAtLeast(int min) =>
        text => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v : null;

    /// <summary>A defined member of <typeparamref name="T"/> by name (not by number), or null.</summary>
    public static T? EnumName<T>(string text) where T : struct, Enum =>
        Enum.TryParse<T>(text, ignoreCase: true, out var value) && Enum.IsDefined(value) && !int.TryParse(text, out _) ? value : null;

    /// <summary>Parses <paramref name="args"/> with <paramref name="command"/>; every parse error in one exception.</summary>
    /// <exception cref="ArgumentException">Unknown options, missing or bad values; the message lists them and the usage.</exception>
    public static ParseResult Parse(Command command, IReadOnlyList<string> args, string usage)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = command.Parse(args.ToArray());
        if (result.Errors.Count > 0)
            throw new ArgumentException(string.Join("\n", result.Errors.Select(e => e.Message)) + "\n" + usage, nameof(args));
        return result;
    }
}
