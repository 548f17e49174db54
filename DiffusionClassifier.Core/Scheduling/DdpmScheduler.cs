using DiffusionClassifier.Guards;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Scheduling;

/// <summary>
/// The linear DDPM noise schedule of the reference (Ho et al. 2020): T+1 entries indexed 0..T, of which the
/// timesteps 1..T are used. The constructor is its configuration. All coefficients are computed in float64.
/// </summary>
/// <remarks>
/// beta_t = beta1 + (beta2 - beta1) t / T; alpha_t = 1 - beta_t; alphabar_t = exp(cumsum(log alpha_t)), so
/// alphabar_0 = 1 - beta1. The scheduler holds no native memory; it is immutable and thread-safe. Two schedulers are
/// equal when their configuration (T, beta_1, beta_T) is.
/// </remarks>
public sealed class DdpmScheduler : IEquatable<DdpmScheduler>
{
    /// <summary>The largest T accepted (the reference uses 400, diffusers 1000); larger values are refused before
    /// the coefficient tables are allocated.</summary>
    public const int MaxTrainTimesteps = 100_000;

    private readonly double[] betas, alphas, alphaBars, sqrtAlphaBars, sqrtOneMinusAlphaBars, oneOverSqrtAlphas, sqrtBetas, mabOverSqrtMab;

    // The noising coefficients as tensors, per (device, dtype): built once, so that the classifier's per-chunk
    // AddNoise is an index_select on the device, without a host round trip. A few KB each, kept for the
    // scheduler's lifetime (it is not IDisposable).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(DeviceType, int, ScalarType), (Tensor SqrtAlphaBars, Tensor SqrtOneMinusAlphaBars)> noisingTables = new();

    /// <summary>Creates the schedule.</summary>
    /// <param name="numTrainTimesteps">T (reference <c>n_T</c>); default 400.</param>
    /// <param name="betaStart">beta_1 of the linear schedule (reference <c>betas[0]</c>); default 1e-4.</param>
    /// <param name="betaEnd">beta_T (reference <c>betas[1]</c>); default 0.02.</param>
    /// <exception cref="ArgumentOutOfRangeException">T is not in 1..<see cref="MaxTrainTimesteps"/>, or the betas are not
    /// 0 &lt; start &lt;= end &lt; 1.</exception>
    public DdpmScheduler(int numTrainTimesteps = 400, double betaStart = 1e-4, double betaEnd = 0.02)
    {
        if (numTrainTimesteps < 1 || numTrainTimesteps > MaxTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(numTrainTimesteps), numTrainTimesteps, $"The number of timesteps must lie in 1..{MaxTrainTimesteps}.");
        if (!(betaStart > 0 && betaStart < 1))
            throw new ArgumentOutOfRangeException(nameof(betaStart), betaStart, "betaStart must lie in (0, 1).");
        if (!(betaEnd >= betaStart && betaEnd < 1))
            throw new ArgumentOutOfRangeException(nameof(betaEnd), betaEnd, $"betaEnd must lie in [betaStart, 1) = [{betaStart}, 1).");

        NumTrainTimesteps = numTrainTimesteps;
        BetaStart = betaStart;
        BetaEnd = betaEnd;
        int n = numTrainTimesteps + 1;
        betas = new double[n]; alphas = new double[n]; alphaBars = new double[n]; sqrtAlphaBars = new double[n];
        sqrtOneMinusAlphaBars = new double[n]; oneOverSqrtAlphas = new double[n]; sqrtBetas = new double[n]; mabOverSqrtMab = new double[n];
        double logSum = 0;
        for (int t = 0; t < n; t++)
        {
            betas[t] = betaStart + (betaEnd - betaStart) * t / numTrainTimesteps;
            alphas[t] = 1 - betas[t];
            logSum += Math.Log(alphas[t]);
            alphaBars[t] = Math.Exp(logSum);
            sqrtAlphaBars[t] = Math.Sqrt(alphaBars[t]);
            sqrtOneMinusAlphaBars[t] = Math.Sqrt(1 - alphaBars[t]);
            oneOverSqrtAlphas[t] = 1 / Math.Sqrt(alphas[t]);
            sqrtBetas[t] = Math.Sqrt(betas[t]);
            mabOverSqrtMab[t] = (1 - alphas[t]) / sqrtOneMinusAlphaBars[t];
        }
    }

    /// <summary>T, the number of diffusion steps (reference <c>n_T</c>).</summary>
    public int NumTrainTimesteps { get; }
    /// <summary>beta_1 of the linear schedule.</summary>
    public double BetaStart { get; }
    /// <summary>beta_T of the linear schedule.</summary>
    public double BetaEnd { get; }

    /// <summary>Whether <paramref name="other"/> has the same configuration (T, beta_1, beta_T).</summary>
    /// <param name="other">The scheduler to compare with.</param>
    /// <returns>True when the schedules are the same.</returns>
    public bool Equals(DdpmScheduler? other) => other is not null &&
        NumTrainTimesteps == other.NumTrainTimesteps && BetaStart.Equals(other.BetaStart) && BetaEnd.Equals(other.BetaEnd);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as DdpmScheduler);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(NumTrainTimesteps, BetaStart, BetaEnd);

    /// <summary>Configuration equality.</summary>
    /// <param name="left">The first scheduler.</param>
    /// <param name="right">The second scheduler.</param>
    /// <returns>True when both are null or have the same configuration.</returns>
    public static bool operator ==(DdpmScheduler? left, DdpmScheduler? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Configuration inequality.</summary>
    /// <param name="left">The first scheduler.</param>
    /// <param name="right">The second scheduler.</param>
    /// <returns>True when exactly one is null or the configurations differ.</returns>
    public static bool operator !=(DdpmScheduler? left, DdpmScheduler? right) => !(left == right);

    /// <inheritdoc />
    public override string ToString() => FormattableString.Invariant($"DdpmScheduler(T = {NumTrainTimesteps}, betas {BetaStart}..{BetaEnd})");

    /// <summary>beta_t, t = 0..T.</summary>
    public IReadOnlyList<double> Betas => betas;
    /// <summary>alpha_t = 1 - beta_t (reference <c>alpha_t</c>).</summary>
    public IReadOnlyList<double> Alphas => alphas;
    /// <summary>alphabar_t = prod_{s&lt;=t} alpha_s (reference <c>alphabar_t</c>).</summary>
    public IReadOnlyList<double> AlphaBars => alphaBars;
    /// <summary>sqrt(alphabar_t) (reference <c>sqrtab</c>).</summary>
    public IReadOnlyList<double> SqrtAlphaBars => sqrtAlphaBars;
    /// <summary>sqrt(1 - alphabar_t) (reference <c>sqrtmab</c>).</summary>
    public IReadOnlyList<double> SqrtOneMinusAlphaBars => sqrtOneMinusAlphaBars;
    /// <summary>1 / sqrt(alpha_t) (reference <c>oneover_sqrta</c>).</summary>
    public IReadOnlyList<double> OneOverSqrtAlphas => oneOverSqrtAlphas;
    /// <summary>sqrt(beta_t) (reference <c>sqrt_beta_t</c>), the reverse-process noise scale sigma_t.</summary>
    public IReadOnlyList<double> SqrtBetas => sqrtBetas;
    /// <summary>(1 - alpha_t) / sqrt(1 - alphabar_t) (reference <c>mab_over_sqrtmab</c>).</summary>
    public IReadOnlyList<double> MabOverSqrtMab => mabOverSqrtMab;

    /// <summary>
    /// The forward process q(x_t | x_0) (DDPM eq. 4): <c>x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) noise</c>.
    /// </summary>
    /// <param name="originalSamples">x_0, [B, ...].</param>
    /// <param name="noise">epsilon, same shape as <paramref name="originalSamples"/>.</param>
    /// <param name="timesteps">t per sample, an integer vector [B], each in 1..T (0 is allowed and uses alphabar_0).</param>
    /// <returns>x_t, same shape and dtype as <paramref name="originalSamples"/>. The caller owns it.</returns>
    /// <exception cref="ArgumentException">A shape, dtype or device does not match (the samples and the noise must be
    /// floating point of the same dtype; the timesteps an integer vector [B]).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A timestep lies outside 0..T.</exception>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, Tensor timesteps)
    {
        ArgumentNullException.ThrowIfNull(originalSamples);
        ArgumentNullException.ThrowIfNull(noise);
        ArgumentNullException.ThrowIfNull(timesteps);
        if (originalSamples.dim() < 1)
            throw TensorGuard.Mismatch(nameof(originalSamples), "a batch dimension [B, ...]", "a scalar");
        TensorGuard.FloatingPoint(originalSamples, nameof(originalSamples));
        RequireLike(noise, originalSamples, nameof(noise));
        long b = originalSamples.shape[0];
        TensorGuard.Shape(timesteps, nameof(timesteps), [b]);
        TensorGuard.Integer(timesteps, nameof(timesteps));
        using var scope = NewDisposeScope();
        var shape = new long[originalSamples.dim()];
        Array.Fill(shape, 1L);
        shape[0] = b;
        var a = Gather(sqrtAlphaBars, timesteps, originalSamples).reshape(shape);
        var s = Gather(sqrtOneMinusAlphaBars, timesteps, originalSamples).reshape(shape);
        // Explicit alpha: see TorchScalars.
        return a.mul(originalSamples).add(s.mul(noise), TorchScalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One reverse step (DDPM Algorithm 2, line 4):
    /// <c>x_{t-1} = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alphabar_t) eps_hat) + sqrt(beta_t) z</c>, with z = 0 at
    /// t = 1. No clipping.
    /// </summary>
    /// <param name="modelOutput">eps_hat, the predicted noise, same shape as <paramref name="sample"/>.</param>
    /// <param name="timestep">t in 1..T, the same for the whole batch.</param>
    /// <param name="sample">x_t.</param>
    /// <param name="noise">z ~ N(0, I), same shape as <paramref name="sample"/>; ignored (may be null) at t = 1.</param>
    /// <returns>x_{t-1}, same dtype as <paramref name="sample"/>. The caller owns it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timestep"/> lies outside 1..T.</exception>
    /// <exception cref="ArgumentException">The model output or the noise differs from the sample in shape, dtype or
    /// device, or the sample is not floating point.</exception>
    public Tensor Step(Tensor modelOutput, int timestep, Tensor sample, Tensor? noise)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        ValidateTimestep(timestep);
        TensorGuard.FloatingPoint(sample, nameof(sample));
        RequireLike(modelOutput, sample, nameof(modelOutput));
        if (timestep > 1)
        {
            if (noise is null)
                throw new ArgumentNullException(nameof(noise), $"Noise is required for timestep {timestep} > 1.");
            RequireLike(noise, sample, nameof(noise));
        }
        using var scope = NewDisposeScope();
        // Scalars held for the whole call and explicit alphas: see TorchScalars.
        using var mab = mabOverSqrtMab[timestep].ToScalar();
        using var scale = oneOverSqrtAlphas[timestep].ToScalar();
        using var sigma = sqrtBetas[timestep].ToScalar();
        var mean = sample.add(modelOutput.mul(mab), TorchScalars.MinusOne).mul(scale);
        var result = timestep > 1 ? mean.add(noise!.mul(sigma), TorchScalars.One) : mean;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>One reverse step drawing z from <paramref name="generator"/> (see <see cref="Step(Tensor, int, Tensor, Tensor?)"/>).</summary>
    /// <param name="modelOutput">eps_hat.</param>
    /// <param name="timestep">t in 1..T.</param>
    /// <param name="sample">x_t.</param>
    /// <param name="generator">Random source for z; null uses the global generator.</param>
    /// <returns>x_{t-1}. The caller owns it.</returns>
    /// <remarks>A literal <c>null</c> last argument binds here (the global generator), not to the noise overload.</remarks>
    [System.Runtime.CompilerServices.OverloadResolutionPriority(1)]
    public Tensor Step(Tensor modelOutput, int timestep, Tensor sample, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        ValidateTimestep(timestep);
        TensorGuard.FloatingPoint(sample, nameof(sample));
        using var z = timestep > 1 ? randn(sample.shape, sample.dtype, sample.device, generator: generator) : null;
        return Step(modelOutput, timestep, sample, z);
    }

    /// <summary>The network's time input: <c>t / T</c> as a float tensor [B] (reference <c>_ts / n_T</c>).</summary>
    /// <param name="timesteps">int64 timesteps [B].</param>
    /// <param name="dtype">Floating dtype of the result.</param>
    /// <returns>The normalised timesteps. The caller owns them.</returns>
    public Tensor NormalizeTimesteps(Tensor timesteps, ScalarType dtype = ScalarType.Float32)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        using var scope = NewDisposeScope();
        using var steps = NumTrainTimesteps.ToScalar();
        return timesteps.to(ScalarType.Float64).div(steps).to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Draws <paramref name="count"/> timesteps uniformly from 1..T (reference training and classifier).</summary>
    /// <param name="count">How many.</param>
    /// <param name="generator">Random source; null uses the global generator.</param>
    /// <param name="device">Device of the result; CPU when null.</param>
    /// <returns>int64 [count]. The caller owns it.</returns>
    public Tensor SampleTimesteps(long count, Generator? generator = null, Device? device = null)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must not be negative.");
        return randint(1, NumTrainTimesteps + 1, new[] { count }, ScalarType.Int64, device, generator: generator);
    }

    /// <summary>
    /// <paramref name="count"/> timesteps evenly spaced over 1..T (the stratified choice of Li et al. 2023): the
    /// centres of <paramref name="count"/> equal strata, rounded, strictly increasing when count &lt;= T.
    /// </summary>
    /// <param name="count">How many; 1..T.</param>
    /// <returns>The timesteps, ascending.</returns>
    public int[] EvenlySpacedTimesteps(int count)
    {
        if (count < 1 || count > NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must lie in 1..{NumTrainTimesteps}.");
        return StratumCentres(count);
    }

    /// <summary>
    /// <c>1 + floor((i + 0.5) T / count)</c>, i = 0..count-1: the rounded centres of <paramref name="count"/> equal strata
    /// of 1..T. Strictly increasing when count &lt;= T; with more, neighbours repeat.
    /// </summary>
    internal int[] StratumCentres(int count)
    {
        var result = new int[count];
        for (int i = 0; i < count; i++)
            result[i] = 1 + (int)Math.Floor((i + 0.5) * NumTrainTimesteps / count);
        return result;
    }

    // Same shape, dtype and device as the sample, so that the result keeps the sample's dtype.
    private static void RequireLike(Tensor tensor, Tensor sample, string parameterName)
    {
        TensorGuard.Shape(tensor, parameterName, sample.shape);
        TensorGuard.Like(tensor, sample, parameterName, "the sample");
    }

    private void ValidateTimestep(int timestep)
    {
        if (timestep < 1 || timestep > NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timestep), timestep, $"timestep must lie in 1..{NumTrainTimesteps}.");
    }

    /// <summary>
    /// <see cref="AddNoise"/> for timesteps already known to lie in 0..T (the classifier draws them itself): the
    /// coefficients come from tables cached on the samples' device, with no range check and so no host round trip.
    /// </summary>
    internal Tensor AddNoiseUnchecked(Tensor originalSamples, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (sqrtAb, sqrtMab) = noisingTables.GetOrAdd((originalSamples.device_type, originalSamples.device_index, originalSamples.dtype), key =>
        {
            using var build = NewDisposeScope();
            var device = new Device(key.Item1, key.Item2);
            return (tensor(sqrtAlphaBars, ScalarType.Float64).to(key.Item3, device).DetachFromDisposeScope(),
                tensor(sqrtOneMinusAlphaBars, ScalarType.Float64).to(key.Item3, device).DetachFromDisposeScope());
        });
        var shape = new long[originalSamples.dim()];
        Array.Fill(shape, 1L);
        shape[0] = originalSamples.shape[0];
        var a = sqrtAb.index_select(0, timesteps).reshape(shape);
        var s = sqrtMab.index_select(0, timesteps).reshape(shape);
        return a.mul(originalSamples).add(s.mul(noise), TorchScalars.One).MoveToOuterDisposeScope();
    }

    private Tensor Gather(double[] table, Tensor timesteps, Tensor like)
    {
        using var scope = NewDisposeScope();
        var cpuIdx = timesteps.to(ScalarType.Int64).cpu();
        if (cpuIdx.numel() > 0)
        {
            long min = cpuIdx.min().item<long>(), max = cpuIdx.max().item<long>();
            if (min < 0 || max > NumTrainTimesteps)
                throw new ArgumentOutOfRangeException(nameof(timesteps), $"timesteps must lie in 0..{NumTrainTimesteps}; got values from {min} to {max}.");
        }
        var values = tensor(table, ScalarType.Float64).index_select(0, cpuIdx);
        return values.to(like.dtype, like.device).MoveToOuterDisposeScope();
    }
}
