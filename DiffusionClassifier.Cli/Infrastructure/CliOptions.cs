using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>Option factories shared by several commands (each command gets its own instances).</summary>
internal static class CliOptions
{
    /// <summary><c>--model</c>: a model file; omitted means the built-in default.</summary>
    public static Option<FileInfo?> Model() => new("--model", "-m")
    {
        Description = "Model file (.safetensors written by train or import-pytorch). Default: the built-in MNIST model.",
        HelpName = "file",
    };

    /// <summary>An int option with a default and a lower bound checked at parse time.</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min, string helpName, params string[] aliases)
    {
        var option = new Option<int>(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            HelpName = helpName,
        };
        option.Validators.Add(result =>
        {
            if (!OptionValues.TryGetValue(result, out int value))
                return;
            if (value < min)
                result.AddError($"{name} must be at least {min} but is {value}.");
        });
        return option;
    }

    /// <summary><c>--limit</c>: an optional item count, at least 1 when given.</summary>
    public static Option<int?> Limit(string description)
    {
        var option = new Option<int?>("--limit") { Description = description, HelpName = "count" };
        option.Validators.Add(result =>
        {
            if (OptionValues.TryGetValue(result, out int? value) && value is < 1)
                result.AddError($"--limit must be at least 1 but is {value}.");
        });
        return option;
    }

    /// <summary>A double option with a default and a lower bound checked at parse time.</summary>
    public static Option<double> Double(string name, string description, double defaultValue, double min, string helpName, params string[] aliases)
    {
        var option = new Option<double>(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            HelpName = helpName,
        };
        option.Validators.Add(result =>
        {
            if (!OptionValues.TryGetValue(result, out double value))
                return;
            if (!(value >= min) || double.IsInfinity(value))
                result.AddError($"{name} must be a finite number >= {min.ToString(CultureInfo.InvariantCulture)} but is {value.ToString(CultureInfo.InvariantCulture)}.");
        });
        return option;
    }

    /// <summary>A comma-separated list of integers (e.g. <c>20,50,100</c>), each at least <paramref name="min"/>.</summary>
    public static Option<int[]?> IntList(string name, string description, int min, string helpName, int[]? defaultValue = null)
    {
        var option = new Option<int[]?>(name)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = result => ParseIntList(result, name, min),
        };
        if (defaultValue is not null)
            option.DefaultValueFactory = _ => defaultValue;
        return option;
    }


    private static int[]? ParseIntList(ArgumentResult result, string name, int min)
    {
        var values = new List<int>();
        foreach (var token in result.Tokens)
        {
            foreach (var part in token.Value.Split(',', StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
                {
                    result.AddError($"{name}: '{part}' is not an integer (expected a comma-separated list such as 1,2,3).");
                    return null;
                }
                if (value < min)
                {
                    result.AddError($"{name}: {value} is below the minimum {min}.");
                    return null;
                }
                values.Add(value);
            }
        }
        if (values.Count == 0)
        {
            result.AddError($"{name} needs at least one value.");
            return null;
        }
        return values.ToArray();
    }
}
