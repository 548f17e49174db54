using System.Diagnostics;
using DiffusionClassifier.Classification;
using static TorchSharp.torch;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>Runs <see cref="BayesClassifier.PredictBatch"/> over selected dataset items in batches, timing each batch.</summary>
internal static class BatchClassification
{
    /// <summary>Images per <c>PredictBatch</c> call (and per cache flush).</summary>
    public const int DefaultBatchSize = 25;

    /// <summary>
    /// Classifies <paramref name="indices"/> of <paramref name="images"/> at <paramref name="n"/>, calling
    /// <paramref name="onBatch"/> after each batch with its predictions and the seconds it took.
    /// </summary>
    public static void Run(BayesClassifier classifier, Tensor images, IReadOnlyList<int> indices, int n, int batchSize,
        Action<IReadOnlyList<int>, IReadOnlyList<ClassPrediction>, double> onBatch, CancellationToken cancellationToken)
    {
        for (int start = 0; start < indices.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batchIndices = indices.Skip(start).Take(batchSize).ToArray();
            using var scope = NewDisposeScope();
            var batch = images.index_select(0, tensor(batchIndices.Select(i => (long)i).ToArray())).to(classifier.Device);
            var watch = Stopwatch.StartNew();
            var predictions = classifier.PredictBatch(batch, n, cancellationToken: cancellationToken);
            onBatch(batchIndices, predictions, watch.Elapsed.TotalSeconds);
        }
    }
}
