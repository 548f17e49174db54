using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>
/// The (t, eps) samples of one image, drawn from a generator seeded for that image: the timesteps first (all n, for
/// <see cref="TimestepStrategy.Random"/>), then one noise tensor per sample in sample order, on demand. The draw
/// depends only on the seed, n, the strategy, the boundaries and the device, never on batching or chunking.
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
    private int next;

    /// <summary>Creates the stream and draws the timesteps.</summary>
    /// <param name="seed">Seed of this image's generator.</param>
    /// <param name="samples">n.</param>
    /// <param name="strategy">How timesteps are chosen.</param>
    /// <param name="scheduler">The noise schedule (T).</param>
    /// <param name="stageEnds">Cumulative sample counts of the pruning stages below n, ascending (may be empty).</param>
    /// <param name="noiseShape">Shape of one noise sample, [C, H, W].</param>
    /// <param name="device">Where the generator lives and the noise is drawn; null = the CPU.</param>
    public NoiseSampleStream(long seed, int samples, TimestepStrategy strategy, DdpmScheduler scheduler,
        IReadOnlyList<int> stageEnds, long[] noiseShape, Device? device = null)
    {
        this.noiseShape = noiseShape;
        this.device = device ?? CPU;
        generator = new Generator(unchecked((ulong)seed), this.device);
        if (strategy == TimestepStrategy.Random)
        {
            using var t = scheduler.SampleTimesteps(samples, generator, this.device);
            Timesteps = t.to(ScalarType.Int32).cpu().data<int>().ToArray();
        }
        else
        {
            Timesteps = StratifiedTimesteps(scheduler, samples, stageEnds);
        }
    }

    /// <summary>The timestep of each sample, in sample order.</summary>
    public int[] Timesteps { get; }

    /// <summary>Draws the noise of sample <paramref name="sample"/>, float32 on the stream's device; samples must be requested in order.</summary>
    /// <param name="sample">The next sample index.</param>
    /// <returns>eps [C, H, W]. The caller owns it.</returns>
    public Tensor NextNoise(int sample)
    {
        if (sample != next)
            throw new InvalidOperationException($"Noise sample {sample} requested but the next one is {next}.");
        next++;
        // One draw per sample keeps the stream independent of how samples are grouped into network calls.
        return randn(noiseShape, ScalarType.Float32, device, generator: generator);
    }

    /// <summary>
    /// Evenly spaced timesteps in an order whose every stage prefix is evenly spaced too: the grid is
    /// <c>1 + floor((i + 0.5) T / n)</c> (<see cref="DdpmScheduler.StratumCentres"/>); stage s,
    /// ending at sample c_s, takes the not yet used grid points among the c_s evenly strided ones
    /// <c>floor((k + 0.5) n / c_s)</c>, thinned evenly to the c_s - c_{s-1} it needs, in ascending order.
    /// </summary>
    /// <param name="scheduler">The schedule.</param>
    /// <param name="samples">n.</param>
    /// <param name="stageEnds">Cumulative stage ends below n, ascending.</param>
    internal static int[] StratifiedTimesteps(DdpmScheduler scheduler, int samples, IReadOnlyList<int> stageEnds)
    {
        int[] grid = scheduler.StratumCentres(samples);

        var used = new bool[samples];
        var order = new List<int>(samples);
        foreach (int end in stageEnds.Append(samples))
        {
            int need = end - order.Count;
            var candidates = new List<int>(end);
            for (long k = 0; k < end; k++)
            {
                int index = (int)((2 * k + 1) * samples / (2L * end));
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
        return order.Select(i => grid[i]).ToArray();
    }

    /// <inheritdoc />
    public void Dispose() => generator.Dispose();
}
