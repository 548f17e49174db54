namespace DiffusionClassifier.Classification;

/// <summary>
/// The Monte Carlo loop shared by every estimator: spends samples stage by stage on the surviving classes of a group
/// of images, in chunks, prunes between stages and stops decided images at the early exit's looks. Knows nothing of
/// tensors, so tests can drive it with synthetic errors.
/// </summary>
internal static class StagedEvaluation
{
    /// <summary>Per-image totals after the loop.</summary>
    /// <param name="StageSums">Per segment (the samples between two consecutive boundaries, pruning stages and looks
    /// together), per class: loss summed over pixels and over the segment's samples (0 for a class that did not take
    /// part).</param>
    /// <param name="Counts">Per class: samples received.</param>
    /// <param name="PrunedAfterStage">Per class: the segment after which it was pruned (it took part in segments
    /// 0..that one), or -1 if it survived.</param>
    /// <param name="SamplesEvaluated">Distinct samples evaluated (trunk evaluations when the trunk is shared).</param>
    /// <param name="Products">Per pair of classes (b, c): the sum of e_b(j) e_c(j) over the samples j both received,
    /// from which the paired differences' variance follows without keeping every sample.</param>
    /// <param name="SampleErrors">When recorded: per sample, per class, the loss (NaN where the class did not receive
    /// the sample); otherwise null.</param>
    /// <param name="Stop">Why the image stopped.</param>
    /// <param name="LogSums">Per class: the sum of ln(loss) over the samples it received (for pruning margins).</param>
    internal sealed record Tally(double[][] StageSums, int[] Counts, int[] PrunedAfterStage, int SamplesEvaluated,
        double[,] Products, double[][]? SampleErrors, StopReason Stop, double[] LogSums)
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
    /// <param name="stages">Pruning boundaries below n with their keeps and margins (see <see cref="PruningSchedule.ResolveBoundaries"/>); empty = no pruning.</param>
    /// <param name="chunkSize">Rows (sample x class) per evaluator call; a sample is never split.</param>
    /// <param name="evaluator">Scores chunks.</param>
    /// <param name="cancellationToken">Checked before each chunk.</param>
    /// <param name="earlyExit">The sequential test run at its looks; null runs every image to n.</param>
    /// <param name="recordSamples">Keep every per-sample loss in <see cref="Tally.SampleErrors"/> (n x classes per image).</param>
    public static Tally[] Run(int images, int samples, int classes, IReadOnlyList<PruningBoundary> stages,
        int chunkSize, ISampleErrorEvaluator evaluator, CancellationToken cancellationToken, EarlyExit? earlyExit = null,
        bool recordSamples = false)
    {
        var looks = earlyExit?.Looks(samples) ?? Array.Empty<int>();
        var stagesByEnd = stages.ToDictionary(s => s.CumulativeSamples);
        var boundaries = stagesByEnd.Keys.Union(looks).Order().ToArray();
        int comparisons = EarlyExit.Comparisons(looks, stages, classes);
        var critical = looks.ToDictionary(m => m, m => earlyExit!.CriticalValue(m, comparisons));

        var tallies = new Tally[images];
        var survivors = new int[images][];
        var decided = new bool[images];
        var all = Enumerable.Range(0, classes).ToArray();
        for (int i = 0; i < images; i++)
        {
            var sampleErrors = recordSamples
                ? Enumerable.Range(0, samples).Select(_ => Enumerable.Repeat(double.NaN, classes).ToArray()).ToArray()
                : null;
            tallies[i] = new Tally(Enumerable.Range(0, boundaries.Length + 1).Select(_ => new double[classes]).ToArray(), new int[classes],
                Enumerable.Repeat(-1, classes).ToArray(), 0, new double[classes, classes], sampleErrors, StopReason.AllSamples,
                new double[classes]);
            survivors[i] = all;
        }
        var evaluated = new int[images];

        int start = 0;
        for (int s = 0; s <= boundaries.Length; s++)
        {
            int end = s < boundaries.Length ? boundaries[s] : samples;
            var requests = new List<SampleRequest>();
            for (int i = 0; i < images; i++)
            {
                // One survivor is the answer, a decided image is done: spend nothing more (the first segment always runs).
                if (start > 0 && (survivors[i].Length == 1 || decided[i]))
                    continue;
                for (int j = start; j < end; j++)
                    requests.Add(new SampleRequest(i, j, survivors[i]));
            }
            EvaluateInChunks(requests, s, chunkSize, evaluator, tallies, evaluated, cancellationToken);

            if (s < boundaries.Length)
            {
                for (int i = 0; i < images; i++)
                {
                    if (decided[i] || survivors[i].Length == 1)
                        continue;
                    if (stagesByEnd.TryGetValue(end, out var stage))
                        survivors[i] = Prune(tallies[i], s, end, survivors[i], stage);
                    if (critical.TryGetValue(end, out double q) && survivors[i].Length > 1)
                        decided[i] = IsDecided(tallies[i], end, survivors[i], q);
                }
            }
            start = end;
        }

        for (int i = 0; i < images; i++)
        {
            var stop = decided[i] ? StopReason.Decided : survivors[i].Length == 1 && evaluated[i] < samples ? StopReason.OneSurvivor : StopReason.AllSamples;
            tallies[i] = tallies[i] with { SamplesEvaluated = evaluated[i], Stop = stop };
        }
        return tallies;
    }

    /// <summary>
    /// One pruning stage after <paramref name="m"/> samples: the <see cref="PruningBoundary.Keep"/> survivors with the
    /// lowest error sums stay, and with a margin only those whose mean log error ratio to the leader is within it.
    /// </summary>
    internal static int[] Prune(Tally tally, int segment, int m, int[] survivors, PruningBoundary stage)
    {
        // All survivors received the same samples: rank by error sum; ties go to the lower class.
        var sums = tally.ErrorSums;
        var ranked = survivors.OrderBy(c => sums[c]).ThenBy(c => c).ToArray();
        int leader = ranked[0];
        var kept = ranked.Take(stage.Keep)
            // The leader always stays, even when a non-finite loss makes every log ratio NaN.
            .Where(c => c == leader || stage.Margin is not double margin || (tally.LogSums[c] - tally.LogSums[leader]) / m <= margin)
            .ToArray();
        foreach (var c in ranked.Except(kept))
            tally.PrunedAfterStage[c] = segment;
        return kept.Order().ToArray();
    }

    /// <summary>
    /// The sequential test of <see cref="EarlyExit"/> after <paramref name="m"/> samples: true when, for every other
    /// survivor b, the paired differences d_j = e_b(j) - e_leader(j) have mean / (sd / sqrt(m)) above
    /// <paramref name="critical"/>.
    /// </summary>
    internal static bool IsDecided(Tally tally, int m, int[] survivors, double critical)
    {
        // Every survivor has received exactly the first m samples, so its error sum is over them.
        var sums = tally.ErrorSums;
        int leader = survivors.OrderBy(c => sums[c]).ThenBy(c => c).First();
        var p = tally.Products;
        foreach (int b in survivors)
        {
            if (b == leader)
                continue;
            double mean = (sums[b] - sums[leader]) / m;
            double squares = p[b, b] - 2 * p[b, leader] + p[leader, leader]; // sum of d_j^2
            double variance = Math.Max(0, (squares - m * mean * mean) / (m - 1));
            double standardError = Math.Sqrt(variance / m);
            // A zero spread decides only a strictly positive mean.
            if (!(mean > 0 && (standardError == 0 || mean / standardError > critical)))
                return false;
        }
        return true;
    }

    private static void EvaluateInChunks(List<SampleRequest> requests, int stage, int chunkSize, ISampleErrorEvaluator evaluator,
        Tally[] tallies, int[] evaluated, CancellationToken cancellationToken)
    {
        // Every chunk of the segment is queued first and read back once: one host transfer per segment, not per chunk.
        var pending = new List<(SampleRequest[] Chunk, double[][] Errors)>();
        int index = 0;
        while (index < requests.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int first = index, rows = 0;
            while (index < requests.Count && (index == first || rows + requests[index].Classes.Length <= chunkSize))
                rows += requests[index++].Classes.Length;
            var chunk = requests.GetRange(first, index - first).ToArray();
            var errors = chunk.Select(r => new double[r.Classes.Length]).ToArray();
            evaluator.Evaluate(chunk, errors);
            pending.Add((chunk, errors));
        }
        evaluator.Flush();
        foreach (var (chunk, errors) in pending)
        {
            for (int r = 0; r < chunk.Length; r++)
            {
                var t = tallies[chunk[r].Image];
                var cls = chunk[r].Classes;
                for (int k = 0; k < cls.Length; k++)
                {
                    t.StageSums[stage][cls[k]] += errors[r][k];
                    // A zero loss would make the log ratio infinite; the floor keeps it finite and ranks it first.
                    t.LogSums[cls[k]] += Math.Log(Math.Max(errors[r][k], 1e-300));
                    for (int l = 0; l < cls.Length; l++)
                        t.Products[cls[k], cls[l]] += errors[r][k] * errors[r][l];
                    if (t.SampleErrors is not null)
                        t.SampleErrors[chunk[r].Sample][cls[k]] = errors[r][k];
                    t.Counts[cls[k]]++;
                }
                evaluated[chunk[r].Image]++;
            }
        }
    }
}
