using System.Globalization;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The <c>flops</c> mode: prints the FLOPs per forward (trunk/head split) for the MNIST widths and the network work
/// of the classifier estimators, from <see cref="FlopCounter"/> (and, as a check, counted from the layer shapes).
/// </summary>
public static class FlopsCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes the tables.</summary>
    /// <param name="output">Destination.</param>
    /// <param name="widths">Widths F; default 32, 64, 128, 256.</param>
    /// <returns>0.</returns>
    public static int Run(TextWriter output, IReadOnlyList<int>? widths = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        widths ??= [32, 64, 128, 256];
        output.WriteLine("FLOPs per image (multiply-add = 2; convolutions, transposed convolutions and linear layers), MNIST 1x28x28, 10 classes:");
        output.WriteLine();
        output.WriteLine("| F | parameters | forward GFLOP | trunk GFLOP | head GFLOP | trunk share | counted from layer shapes (GFLOP) |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (int f in widths)
        {
            var config = ConditionalUNetConfig.Mnist(f);
            using var model = BenchmarkEnvironment.CreateModel(config);
            long parameters = model.parameters().Sum(p => p.numel());
            var (trunk, head) = FlopCounter.CountFromModules(model, batch: 1);
            output.WriteLine(string.Create(Inv,
                $"| {f} | {parameters:N0} | {FlopCounter.Forward(config) / 1e9:F3} | {FlopCounter.Trunk(config) / 1e9:F3} | {FlopCounter.Head(config) / 1e9:F3} | {100 * FlopCounter.Trunk(config) / FlopCounter.Forward(config):F1}% | {(trunk + head) / 1e9:F3} |"));
        }
        output.WriteLine();
        output.WriteLine("Classifier work per image at F = 64 (noise predictions; trunk evaluations; cost in full forwards by FLOPs; the trunk share, and so the last two columns, hardly change with F):");
        output.WriteLine();
        output.WriteLine("| estimator | N | noise predictions | trunk evaluations | full-forward equivalents | ÷ reference |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        var config64 = ConditionalUNetConfig.Mnist(64);
        foreach (int n in new[] { 20, 50, 100 })
        {
            double reference = FlopCounter.Predict(config64, n, BayesClassifierOptions.Reference);
            foreach (var estimator in Enum.GetValues<Estimator>())
            {
                var options = estimator.Options();
                var (evaluations, trunks) = FlopCounter.PredictEvaluations(config64.Classes, n, options);
                double flops = FlopCounter.Predict(config64, n, options);
                output.WriteLine(string.Create(Inv,
                    $"| {estimator} | {n} | {evaluations} | {trunks} | {flops / config64.ForwardFlops():F1} | {reference / flops:F2}× |"));
            }
        }
        return 0;
    }
}
