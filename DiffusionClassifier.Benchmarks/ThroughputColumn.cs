using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// A summary column derived from the median time and the benchmark's <see cref="Workload"/>: images/s, network
/// evaluations per image, or achieved GFLOP/s.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    /// <summary>What the column shows.</summary>
    public enum Kind
    {
        /// <summary>Images processed per second (median time).</summary>
        ImagesPerSecond,
        /// <summary>Network evaluations per image.</summary>
        EvaluationsPerImage,
        /// <summary>Achieved GFLOP/s (median time).</summary>
        GflopsPerSecond,
    }

    private readonly Kind kind;

    /// <summary>Creates a column.</summary>
    /// <param name="kind">What it shows.</param>
    public ThroughputColumn(Kind kind) => this.kind = kind;

    /// <summary>The images/s column.</summary>
    public static ThroughputColumn ImagesPerSecond { get; } = new(Kind.ImagesPerSecond);

    /// <summary>The network-evaluations-per-image column.</summary>
    public static ThroughputColumn EvaluationsPerImage { get; } = new(Kind.EvaluationsPerImage);

    /// <summary>The GFLOP/s column.</summary>
    public static ThroughputColumn GflopsPerSecond { get; } = new(Kind.GflopsPerSecond);

    /// <inheritdoc />
    public string Id => "DiffusionClassifier." + kind;

    /// <inheritdoc />
    public string ColumnName => kind switch
    {
        Kind.ImagesPerSecond => "Images/s",
        Kind.EvaluationsPerImage => "Evals/image",
        _ => "GFLOP/s",
    };

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => (int)kind;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => kind switch
    {
        Kind.ImagesPerSecond => "Images per second at the median time",
        Kind.EvaluationsPerImage => "Network evaluations (label-conditioned forwards) per image",
        _ => "Achieved GFLOP/s at the median time (convolutions and linear layers only)",
    };

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var workload = Describe(benchmarkCase);
        if (workload is null)
            return "-";
        if (kind == Kind.EvaluationsPerImage)
            return workload.Images > 0 ? workload.EvaluationsPerImage.ToString("0.##", CultureInfo.InvariantCulture) : "-";
        double? medianNs = summary[benchmarkCase]?.ResultStatistics?.Median;
        if (medianNs is not > 0)
            return "-";
        double seconds = medianNs.Value * 1e-9;
        if (kind == Kind.ImagesPerSecond && workload.Images <= 0)
            return "-";
        return kind == Kind.ImagesPerSecond
            ? (workload.Images / seconds).ToString("0.0", CultureInfo.InvariantCulture)
            : (workload.Flops / seconds / 1e9).ToString("0.0", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The workload of a benchmark case: a fresh instance of the benchmark class with the case's parameters set,
    /// asked through <see cref="IWorkloadBenchmark.Describe"/>. Null when the class does not implement it.
    /// </summary>
    /// <param name="benchmarkCase">The case.</param>
    public static Workload? Describe(BenchmarkCase benchmarkCase)
    {
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        var type = benchmarkCase.Descriptor.Type;
        if (!typeof(IWorkloadBenchmark).IsAssignableFrom(type))
            return null;
        var instance = (IWorkloadBenchmark)Activator.CreateInstance(type)!;
        foreach (var parameter in benchmarkCase.Parameters.Items)
            SetMember(instance, parameter.Name, parameter.Value);
        return instance.Describe(benchmarkCase.Descriptor.WorkloadMethod.Name);
    }

    /// <summary>Sets a public property or field by name (how BenchmarkDotNet sets <c>[Params]</c>).</summary>
    /// <param name="instance">The benchmark object.</param>
    /// <param name="name">Member name.</param>
    /// <param name="value">Value.</param>
    public static void SetMember(object instance, string name, object? value)
    {
        ArgumentNullException.ThrowIfNull(instance);
        var type = instance.GetType();
        var property = type.GetProperty(name);
        if (property is not null)
        {
            property.SetValue(instance, value);
            return;
        }
        var field = type.GetField(name) ?? throw new ArgumentException($"{type.Name} has no public member '{name}'.", nameof(name));
        field.SetValue(instance, value);
    }

    /// <inheritdoc />
    public override string ToString() => ColumnName;
}
