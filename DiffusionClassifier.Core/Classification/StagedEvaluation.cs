namespace DiffusionClassifier.Classification;

/// <summary>
/// The Monte Carlo loop shared by every estimator: spends samples stage by stage on the surviving classes of a group
/// of images, in chunks, and prunes between stages. Knows nothing of tensors, so tests can drive it with synthetic
/// errors.
/// </summary>
internal static class StagedEvaluation
{
    /// <summary>Per-image totals after the loop.</summary>
    /// <param name="StageSums">Per stage, per class: loss summed over pixels and over the stage's samples (0 for a
    /// class that did not take part).</param>
    /// <param name="Counts">Per class: samples received.</param>
    /// <param name="PrunedAfterStage">Per class: the stage after which it was pruned (it took part in stages
    /// 0..that one), or -1 if it survived.</param>
    /// <param name="SamplesEvaluated">Distinct samples evaluated (trunk evaluations when the trunk is shared).</param>
    internal sealed record Tally(double[][] StageSums, int[] Counts, int[] PrunedAfterStage, int SamplesEvaluated)
    {
        /// <summary>Per class: removed by a pruning stage.</summary>
        public bool[] Pruned => PrunedAfterStage.Select(s => s >= 0).ToArray();

        /// <summary>Per class: loss summed over all the samples it received.</summary>
        public double[] ErrorSums => Enumerable.Range(0, Counts.Length).Select(c => StageSums.Sum(s => s[c])).ToArray();
    }

    /// <summary>Runs the loop.</summary>
    /// <param name="images">Images in the group.</param>
    /// <param name="samples">n.</param>
    /// <param name="classes">Class count.</param>
    /// <param name="stages">Pruning boundaries below n with their keeps (see <see cref="PruningSchedule.Resolve"/>); empty = no pruning.</param>
    /// <param name="chunkSize">Rows (sample x class) per evaluator call; a sample is never split.</param>
    /// <param name="evaluator">Scores chunks.</param>
    /// <param name="cancellationToken">Checked before each chunk.</param>
    public static Tally[] Run(int images, int samples, int classes, IReadOnlyList<(int CumulativeSamples, int Keep)> stages,
        int chunkSize, ISampleErrorEvaluator evaluator, CancellationToken cancellationToken)
    {
        var tallies = new Tally[images];
        var survivors = new int[images][];
        var all = Enumerable.Range(0, classes).ToArray();
        for (int i = 0; i < images; i++)
        {
            tallies[i] = new Tally(Enumerable.Range(0, stages.Count + 1).Select(_ => new double[classes]).ToArray(), new int[classes], Enumerable.Repeat(-1, classes).ToArray(), 0);
            survivors[i] = all;
        }
        var evaluated = new int[images];

        int start = 0;
        for (int s = 0; s <= stages.Count; s++)
        {
            int end = s < stages.Count ? stages[s].CumulativeSamples : samples;
            var requests = new List<SampleRequest>();
            for (int i = 0; i < images; i++)
            {
                // One survivor is the answer: spend nothing more on it (the first stage always runs).
                if (start > 0 && survivors[i].Length == 1)
                    continue;
                for (int j = start; j < end; j++)
                    requests.Add(new SampleRequest(i, j, survivors[i]));
            }
            EvaluateInChunks(requests, s, chunkSize, evaluator, tallies, evaluated, cancellationToken);

            if (s < stages.Count)
            {
                int keep = stages[s].Keep;
                for (int i = 0; i < images; i++)
                {
                    if (survivors[i].Length <= keep)
                        continue;
                    var t = tallies[i];
                    // All survivors received the same samples: rank by error sum; ties go to the lower class.
                    var sums = t.ErrorSums;
                    var ranked = survivors[i].OrderBy(c => sums[c]).ThenBy(c => c).ToArray();
                    foreach (var c in ranked.Skip(keep))
                        t.PrunedAfterStage[c] = s;
                    survivors[i] = ranked.Take(keep).Order().ToArray();
                }
            }
            start = end;
        }

        for (int i = 0; i < images; i++)
            tallies[i] = tallies[i] with { SamplesEvaluated = evaluated[i] };
        return tallies;
    }

    private static void EvaluateInChunks(List<SampleRequest> requests, int stage, int chunkSize, ISampleErrorEvaluator evaluator,
        Tally[] tallies, int[] evaluated, CancellationToken cancellationToken)
    {
        int index = 0;
        var chunk = new List<SampleRequest>();
        while (index < requests.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            chunk.Clear();
            int rows = 0;
            while (index < requests.Count && (chunk.Count == 0 || rows + requests[index].Classes.Length <= chunkSize))
            {
                rows += requests[index].Classes.Length;
                chunk.Add(requests[index++]);
            }
            var errors = chunk.Select(r => new double[r.Classes.Length]).ToArray();
            evaluator.Evaluate(chunk, errors);
            for (int r = 0; r < chunk.Count; r++)
            {
                var t = tallies[chunk[r].Image];
                var cls = chunk[r].Classes;
                for (int k = 0; k < cls.Length; k++)
                {
                    t.StageSums[stage][cls[k]] += errors[r][k];
                    t.Counts[cls[k]]++;
                }
                evaluated[chunk[r].Image]++;
            }
        }
    }
}
