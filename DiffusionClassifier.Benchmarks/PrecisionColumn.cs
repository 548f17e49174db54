using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// The precision each case's classifier actually ran in. <see cref="InferencePrecision.Auto"/> is resolved by a probe
/// on the running machine, so the parameter alone does not say it; a case's global setup calls <see cref="Record"/>.
/// Recorded in process only (the default here): a case run in its own process shows "-".
/// </summary>
public sealed class PrecisionColumn : IColumn
{
    private static readonly ConcurrentDictionary<string, string> Chosen = new();

    /// <summary>The column.</summary>
    public static PrecisionColumn Instance { get; } = new();

    /// <summary>The column's name.</summary>
    public const string Name = "Precision";

    /// <summary>Records the precision <paramref name="classifier"/> runs in for the case whose parameters are set on
    /// <paramref name="benchmark"/>, and prints the decision to the log.</summary>
    /// <param name="benchmark">The benchmark instance, its <c>[Params]</c> members set.</param>
    /// <param name="classifier">The classifier the case runs.</param>
    public static void Record(object benchmark, BayesClassifier classifier)
    {
        ArgumentNullException.ThrowIfNull(benchmark);
        ArgumentNullException.ThrowIfNull(classifier);
        var type = BenchmarkType(benchmark.GetType());
        // Every member BenchmarkDotNet sets per case: [Params], [ParamsAllValues] and [ParamsSource], properties or fields.
        static bool IsParameter(MemberInfo m) =>
            m.GetCustomAttribute<ParamsAttribute>() is not null || m.GetCustomAttribute<ParamsAllValuesAttribute>() is not null
            || m.GetCustomAttribute<ParamsSourceAttribute>() is not null;
        var parameters = type.GetProperties().Where(IsParameter).Select(p => (p.Name, p.GetValue(benchmark)))
            .Concat(type.GetFields().Where(IsParameter).Select(f => (f.Name, f.GetValue(benchmark))));
        string key = Key(type, parameters);
        Chosen[key] = Label(classifier.Precision);
        Console.WriteLine($"// {key}: precision {classifier.PrecisionDecision}");
    }

    /// <summary>The recorded precision of a case, or null if its setup did not run in this process.</summary>
    /// <param name="benchmarkCase">The case.</param>
    public static string? Find(BenchmarkCase benchmarkCase)
    {
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        string key = Key(benchmarkCase.Descriptor.Type, benchmarkCase.Parameters.Items.Select(p => (p.Name, (object?)p.Value)));
        return Chosen.TryGetValue(key, out var chosen) ? chosen : null;
    }

    /// <summary>The class that declares the benchmark methods: the in-process toolchain runs a generated subclass
    /// (<c>Runnable_0</c>, ...) whose name is not the case's.</summary>
    private static Type BenchmarkType(Type type)
    {
        for (var t = type; t is not null; t = t.BaseType)
            if (t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
                return t;
        return type;
    }

    private static string Key(Type type, IEnumerable<(string Name, object? Value)> parameters) =>
        type.Name + "(" + string.Join(", ", parameters.OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => p.Name + "=" + Convert.ToString(p.Value, CultureInfo.InvariantCulture))) + ")";

    private static string Label(InferencePrecision precision) => precision switch
    {
        InferencePrecision.BFloat16 => "bfloat16",
        InferencePrecision.Float32 => "float32",
        _ => precision.ToString(),
    };

    /// <inheritdoc />
    public string Id => "DiffusionClassifier.Precision";

    /// <inheritdoc />
    public string ColumnName => Name;

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 10;

    /// <inheritdoc />
    public bool IsNumeric => false;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Precision the classifier ran in (Auto resolved by its probe); '-' for cases without a classifier or run out of process";

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => Find(benchmarkCase) ?? "-";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <inheritdoc />
    public override string ToString() => ColumnName;
}
