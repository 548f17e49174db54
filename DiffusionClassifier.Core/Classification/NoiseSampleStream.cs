using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>
/// The (t, eps) samples of one image, drawn from a generator seeded for that image: the timesteps first (all n, for
/// <see cref="TimestepStrategy.Random"/>), then one noise tensor per sample in draw order, on demand. The draw
/// depends only on the seed, n, the strategy, the boundaries and the device, never on batching, chunking or the looks.
/// </summary>
/// <remarks>The generator lives on the classifier's device, so the noise is drawn where the network runs, with no copy
/// per chunk. A given seed gives the same draw on a given device type; the CPU and CUDA generators are different
/// algorithms, so the draws differ between them. The timesteps are read back to the host once, when the stream is
/// made.</remarks>
/// <remarks>Owns a native generator: dispose it. Not thread-safe; each call of Predict makes its own.</remarks>
internal sealed class NoiseSampleStream : IDisposable
{
    private readonly Generator generator;
    private readonly Device device;
    private readonly long[] noiseShape;
    // Sample p (in spending order) is the drawOrder[p]-th (t, eps) of the draw; the identity without looks.
    private readonly int[] drawOrder;
    // Noise drawn before its turn because the look order spends a later draw first; detached from dispose scopes.
    private readonly Dictionary<int, Tensor> drawnAhead = [];
    private int next;
    private int drawnCount;

    /// <summary>Creates the stream and draws the timesteps.</summary>
    /// <param name="seed">Seed of this image's generator.</param>
    /// <param name="samples">n.</param>
    /// <param name="strategy">How timesteps are chosen.</param>
    /// <param name="scheduler">The noise schedule (T).</param>
    /// <param name="stageEnds">Cumulative sample counts of the pruning stages below n, ascending (may be empty).</param>
    /// <param name="noiseShape">Shape of one noise sample, [C, H, W].</param>
    /// <param name="device">Where the generator lives and the noise is drawn; null = the CPU.</param>
    /// <param name="looks">Sample counts below n at which the early exit tests, ascending. Samples are spent in
    /// <see cref="LookOrder"/>, so that each look sees an evenly spread prefix. Null or empty: in draw order.</param>
    public NoiseSampleStream(long seed, int samples, TimestepStrategy strategy, DdpmScheduler scheduler,
        IReadOnlyList<int> stageEnds, long[] noiseShape, Device? device = null, IReadOnlyList<int>? looks = null)
    {
        this.noiseShape = noiseShape;
        this.device = device ?? CPU;
        generator = new Generator(unchecked((ulong)seed), this.device);
        int[] drawn;
        if (strategy == TimestepStrategy.Random)
        {
            using var t = scheduler.SampleTimesteps(samples, generator, this.device);
            drawn = t.to(ScalarType.Int32).cpu().data<int>().ToArray();
        }
        else
        {
            drawn = StratifiedTimesteps(scheduler, samples, stageEnds);
        }
        drawOrder = LookOrder(samples, stageEnds, looks ?? []);
        Timesteps = drawOrder.Select(i => drawn[i]).ToArray();
    }

    /// <summary>The timestep of each sample, in the order the samples are spent.</summary>
    public int[] Timesteps { get; }

    /// <summary>The noise of sample <paramref name="sample"/> (in spending order), float32 on the stream's device;
    /// samples must be requested in order.</summary>
    /// <param name="sample">The next sample index.</param>
    /// <returns>eps [C, H, W]. The caller owns it.</returns>
    public Tensor NextNoise(int sample)
    {
        if (sample != next)
            throw new InvalidOperationException($"Noise sample {sample} requested but the next one is {next}.");
        next++;
        // One draw per sample, always in draw order, keeps the pairs (t, eps) independent of how samples are grouped
        // into network calls and of the order the looks spend them in.
        int wanted = drawOrder[sample];
        if (drawnAhead.Remove(wanted, out var ahead))
        {
            using (ahead)
                return ahead.clone();
        }
        while (drawnCount < wanted)
            drawnAhead[drawnCount++] = randn(noiseShape, ScalarType.Float32, device, generator: generator).DetachFromDisposeScope();
        drawnCount++;
        return randn(noiseShape, ScalarType.Float32, device, generator: generator);
    }

    /// <summary>
    /// Evenly spaced timesteps in an order whose every stage prefix is evenly spaced too: the grid is
    /// <c>1 + floor((i + 0.5) T / n)</c> (<see cref="DdpmScheduler.StratumCentres"/>), in <see cref="SpreadOrder"/>
    /// with the stage ends as boundaries.
    /// </summary>
    /// <param name="scheduler">The schedule.</param>
    /// <param name="samples">n.</param>
    /// <param name="stageEnds">Cumulative stage ends below n, ascending.</param>
    internal static int[] StratifiedTimesteps(DdpmScheduler scheduler, int samples, IReadOnlyList<int> stageEnds)
    {
        int[] grid = scheduler.StratumCentres(samples);
        return SpreadOrder(samples, stageEnds).Select(i => grid[i]).ToArray();
    }

    /// <summary>
    /// The order in which each pruning stage's samples are spent when early-exit looks fall inside it. A stage draws
    /// its timesteps in ascending order, so a look inside it would see only the stage's lowest timesteps, which
    /// discriminate worst and skew the test (docs/early-exit.md). Here the stage's draws are re-ordered by
    /// <see cref="SpreadOrder"/> with the looks as boundaries. Each stage keeps its set of (t, eps) pairs, so pruning,
    /// and an image that is not stopped, see the same samples as without the exit.
    /// </summary>
    /// <param name="samples">n.</param>
    /// <param name="stageEnds">Cumulative stage ends below n, ascending.</param>
    /// <param name="looks">Look counts below n, ascending.</param>
    /// <returns>For each spending position, the index in draw order; the identity without looks inside a stage.</returns>
    internal static int[] LookOrder(int samples, IReadOnlyList<int> stageEnds, IReadOnlyList<int> looks)
    {
        var order = new int[samples];
        int start = 0;
        foreach (int end in stageEnds.Append(samples))
        {
            var inner = looks.Where(l => l > start && l < end).Select(l => l - start).ToArray();
            var spread = SpreadOrder(end - start, inner);
            for (int k = 0; k < spread.Length; k++)
                order[start + k] = start + spread[k];
            start = end;
        }
        return order;
    }

    /// <summary>
    /// A permutation of 0..size-1 whose prefixes ending at <paramref name="ends"/> are evenly spread: segment s,
    /// ending at c_s, takes the not yet used indices among the c_s evenly strided ones <c>floor((k + 0.5) size / c_s)</c>,
    /// thinned evenly to the c_s - c_{s-1} it needs, in ascending order. Without ends it is the identity.
    /// </summary>
    /// <param name="size">Length of the permutation.</param>
    /// <param name="ends">Prefix lengths below size, ascending.</param>
    internal static int[] SpreadOrder(int size, IReadOnlyList<int> ends)
    {
        var used = new bool[size];
        var order = new List<int>(size);
        foreach (int end in ends.Append(size))
        {
            int need = end - order.Count;
            var candidates = new List<int>(end);
            for (long k = 0; k < end; k++)
            {
                int index = (int)((2 * k + 1) * size / (2L * end));
                if (!used[index])
                    candidates.Add(index);
            }
            // At least `need` candidates exist: the end strided indices are distinct and only order.Count are used.
            for (long k = 0; k < need; k++)
            {
                int index = candidates[(int)((2 * k + 1) * candidates.Count / (2L * need))];
                used[index] = true;
                order.Add(index);
            }
        }
        return order.ToArray();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in drawnAhead.Values)
            t.Dispose();
        drawnAhead.Clear();
        generator.Dispose();
    }
}
