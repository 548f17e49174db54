using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// The estimator options of <c>classify</c>, <c>evaluate</c> and the demo: a preset (<c>--options default|reference</c>)
/// and finer flags that override single settings of it.
/// </summary>
internal sealed class ClassifierOptionsBinder
{
    private readonly Option<string> preset = new Option<string>("--options")
    {
        Description = "Estimator preset: default (stratified timesteps, shared trunk, pruning in stages) or reference (the reference implementation's estimator: random timesteps, full network per class, no pruning).",
        DefaultValueFactory = _ => "default",
        HelpName = "default|reference",
    }.AcceptOnlyFromAmong("default", "reference");

    private readonly Option<string?> timesteps = new Option<string?>("--timesteps")
    {
        Description = "Override the preset's timestep choice: stratified (evenly spaced) or random (t ~ Uniform{1..T}).",
        HelpName = "stratified|random",
    }.AcceptOnlyFromAmong("stratified", "random");

    private readonly Option<bool?> shareTrunk = new("--share-trunk")
    {
        Description = "Override: compute the label-independent trunk once per (t, noise) sample (true) or the full network per class (false).",
        HelpName = "true|false",
    };

    private readonly Option<PruningOverride?> pruning = new("--pruning")
    {
        Description = "Override the pruning schedule: 'none', or stages 'fraction:keep[:margin],...' (e.g. 0.2:3,0.5:2 = after 20% of n samples keep the best 3 classes, after 50% the best 2; 0.1:10:0.3 = after 10% keep the classes whose mean log error ratio to the leader is at most 0.3).",
        HelpName = "none|f:k[:m],...",
        CustomParser = ParsePruning,
    };

    private readonly Option<EarlyExitOverride?> earlyExit = new("--early-exit")
    {
        Description = "Override the sequential early exit: 'none' (spend all n samples on every image), or 'rate[:first[:growth]]' (e.g. 0.01:4:1.5 = stop an image once a paired t-test decides its label at an overall error rate of 1%, testing after 4 samples and then at counts growing 1.5x). The preset default has 0.05:4:1.5, reference has none. See docs/early-exit.md.",
        HelpName = "none|rate[:first[:growth]]",
        CustomParser = ParseEarlyExit,
    };

    private readonly Option<string?> metric = new Option<string?>("--metric")
    {
        Description = "Override the per-pixel loss: l2 (the posterior), l1 or huber.",
        HelpName = "l2|l1|huber",
    }.AcceptOnlyFromAmong("l2", "l1", "huber");

    private readonly Option<string?> precision = new Option<string?>("--precision")
    {
        Description = "Override the network precision: float32, bfloat16, or auto (the preset of default: bfloat16 where a probe on this machine finds it at least 1.3x as fast as float32 and as accurate, float32 elsewhere).",
        HelpName = "auto|float32|bfloat16",
    }.AcceptOnlyFromAmong("auto", "float32", "bfloat16");

    private readonly Option<int?> chunkSize = new("--chunk-size")
    {
        Description = "Override the rows (image, sample, class) per network call (preset: 64).",
        HelpName = "rows",
    };

    private readonly Option<long?> seed = new("--seed")
    {
        Description = "Override the seed of the timesteps and noise (preset: 0).",
        HelpName = "seed",
    };

    private readonly Option<string?> temperature = new("--temperature")
    {
        Description = "Temperature of the reported probabilities, softmax(-scores / T): 'model' (preset: the model file's fitted calibration, or 1 without one), 'paper' (1: the paper's posterior) or a positive number. Labels do not depend on it.",
        HelpName = "model|paper|T",
    };

    private readonly Option<string> device = DeviceChoice.Create();

    public ClassifierOptionsBinder()
    {
        temperature.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && ParseTemperature(r.Tokens[0].Value) is { Valid: false })
                r.AddError($"--temperature must be 'model', 'paper' or a finite number in [{ProbabilityCalibration.MinTemperature}, {ProbabilityCalibration.MaxTemperature}] but is '{r.Tokens[0].Value}'.");
        });
        chunkSize.Validators.Add(r =>
        {
            if (OptionValues.TryGetValue(r, out int? value) && value is int v && (v < 1 || v > BayesClassifierOptions.MaxChunkSize))
                r.AddError($"--chunk-size must lie in 1..{BayesClassifierOptions.MaxChunkSize} but is {v}.");
        });
    }

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { preset, timesteps, shareTrunk, pruning, earlyExit, metric, precision, chunkSize, seed, temperature, device })
            command.Options.Add(option);
    }

    /// <summary>The preset with the overrides given on the command line.</summary>
    public BayesClassifierOptions Bind(ParseResult parseResult)
    {
        var options = parseResult.GetValue(preset) == "reference" ? BayesClassifierOptions.Reference : BayesClassifierOptions.Default;
        if (parseResult.GetValue(timesteps) is string t)
            options = options with { TimestepStrategy = t == "random" ? TimestepStrategy.Random : TimestepStrategy.Stratified };
        if (parseResult.GetValue(shareTrunk) is bool share)
            options = options with { ShareTrunk = share };
        if (parseResult.GetValue(pruning) is { } pruningOverride)
            options = options with { Pruning = pruningOverride.Schedule };
        if (parseResult.GetValue(earlyExit) is { } exitOverride)
            options = options with { EarlyExit = exitOverride.Exit };
        if (parseResult.GetValue(metric) is string m)
            options = options with { ErrorMetric = m switch { "l1" => ErrorMetric.L1, "huber" => ErrorMetric.Huber, _ => ErrorMetric.L2 } };
        if (parseResult.GetValue(precision) is string p)
            options = options with { Precision = p switch { "bfloat16" => InferencePrecision.BFloat16, "float32" => InferencePrecision.Float32, _ => InferencePrecision.Auto } };
        if (parseResult.GetValue(chunkSize) is int c)
            options = options with { ChunkSize = c };
        if (parseResult.GetValue(seed) is long s)
            options = options with { Seed = s };
        options = options with { Device = DeviceChoice.Resolve(parseResult.GetValue(device)!).ToString() };
        if (parseResult.GetValue(temperature) is string text)
            options = options with { Temperature = ParseTemperature(text).Value };
        options.Validate();
        return options;
    }

    /// <summary>
    /// Everything in a classifier's options that changes predictions, as one line (for output and for the cache key),
    /// with the precision it actually runs in (<see cref="InferencePrecision.Auto"/> resolved). The chunk size and
    /// device are left out: they change only float rounding.
    /// </summary>
    public static string Describe(BayesClassifier classifier)
    {
        var options = classifier.Options;
        return string.Create(CultureInfo.InvariantCulture,
            $"timesteps={options.TimestepStrategy}, share_trunk={options.ShareTrunk}, pruning={options.Pruning?.ToString() ?? "none"}, metric={options.ErrorMetric}, precision={classifier.Precision}, seed={options.Seed}")
            // Only when set, so that the keys of runs without it stay what they were. "spread looks": since 2026-12-06
            // a stage's samples are spent in look order, so caches made before (other draws per look) get a new key.
            + (options.EarlyExit is { } exit ? $", early_exit={exit}, spread looks" : "");
    }

    /// <summary>The temperature in effect and where it comes from, for output.</summary>
    public static string DescribeTemperature(BayesClassifier classifier) =>
        classifier.Options.Temperature is not null
            ? string.Create(CultureInfo.InvariantCulture, $"Probabilities: temperature {classifier.Temperature:G4} (--temperature)")
            : classifier.Calibration is { } calibration
                ? $"Probabilities: the model's calibration, {calibration}"
                : "Probabilities: temperature 1 (the paper's posterior; the model file has no calibration)";

    /// <summary>'model' (null), 'paper' (1) or a number in range.</summary>
    private static (bool Valid, double? Value) ParseTemperature(string text)
    {
        text = text.Trim();
        if (text.Equals("model", StringComparison.OrdinalIgnoreCase))
            return (true, null);
        if (text.Equals("paper", StringComparison.OrdinalIgnoreCase))
            return (true, 1.0);
        bool ok = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && double.IsFinite(t)
            && t >= ProbabilityCalibration.MinTemperature && t <= ProbabilityCalibration.MaxTemperature;
        return (ok, ok ? t : null);
    }

    /// <summary>
    /// The parsed <c>--pruning</c> value; <c>none</c> is a value with a null schedule (a custom parser that returns null
    /// makes System.CommandLine try to convert the token itself, which throws InvalidCastException).
    /// </summary>
    private sealed record PruningOverride(PruningSchedule? Schedule);

    /// <summary>The parsed <c>--early-exit</c> value (see <see cref="PruningOverride"/> for why a wrapper).</summary>
    private sealed record EarlyExitOverride(EarlyExit? Exit);

    private static EarlyExitOverride? ParseEarlyExit(ArgumentResult result)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value.Trim() : "";
        if (text.Equals(EarlyExit.None, StringComparison.OrdinalIgnoreCase))
            return new EarlyExitOverride(null);
        try
        {
            return new EarlyExitOverride(EarlyExit.Parse(text));
        }
        catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException)
        {
            result.AddError($"--early-exit: {e.Message}");
            return null;
        }
    }

    private static PruningOverride? ParsePruning(ArgumentResult result)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value.Trim() : "";
        if (text.Equals(PruningSchedule.None, StringComparison.OrdinalIgnoreCase))
            return new PruningOverride(null);
        try
        {
            return new PruningOverride(PruningSchedule.Parse(text));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            result.AddError($"--pruning: {e.Message}");
            return null;
        }
    }
}
