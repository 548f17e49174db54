using DiffusionClassifier.Imaging;
using static TorchSharp.torch;

namespace DiffusionClassifier.Sampling;

/// <summary>
/// The output of <see cref="GuidedSampler.Sample(IReadOnlyList{int}, IProgress{SamplingProgress}?, CancellationToken)"/>:
/// the generated images and, when requested, the intermediate steps.
/// </summary>
/// <remarks>
/// Owns <see cref="Images"/> and <see cref="Steps"/> (native memory): dispose it, or detach the tensors you keep.
/// The values are the raw x_0 of the reverse process, not clipped (MNIST-like models give roughly [0, 1]); the PNG
/// writers clamp to [0, 1] for display.
/// <para>Thread safety: the properties and the PNG writers may be called from several threads; <see cref="Dispose"/> must not race with them.</para>
/// </remarks>
public sealed class SamplingResult : IDisposable
{
    private readonly Tensor images;
    private readonly Tensor? steps;
    private bool disposed;

    internal SamplingResult(Tensor images, Tensor? steps, IReadOnlyList<int> stepTimesteps, IReadOnlyList<int> labels,
        double guidanceWeight, long seed, TimeSpan elapsed)
    {
        this.images = images;
        this.steps = steps;
        StepTimesteps = stepTimesteps;
        Labels = labels;
        GuidanceWeight = guidanceWeight;
        Seed = seed;
        Elapsed = elapsed;
    }

    /// <summary>The generated images x_0, [B, C, H, W], in the order of the labels.</summary>
    public Tensor Images
    {
        get { ObjectDisposedException.ThrowIf(disposed, this); return images; }
    }

    /// <summary>
    /// The captured intermediate states, [S, B, C, H, W] with S = <see cref="StepTimesteps"/>.Count, or null when
    /// <see cref="GuidedSamplerOptions.CaptureEvery"/> was 0. The last entry equals <see cref="Images"/>.
    /// </summary>
    public Tensor? Steps
    {
        get { ObjectDisposedException.ThrowIf(disposed, this); return steps; }
    }

    /// <summary>The timestep t of each captured x_t, descending; the last is 0 (the final images). Empty without capture.</summary>
    public IReadOnlyList<int> StepTimesteps { get; }

    /// <summary>The class label of every image.</summary>
    public IReadOnlyList<int> Labels { get; }

    /// <summary>The guidance weight w used.</summary>
    public double GuidanceWeight { get; }

    /// <summary>The seed used.</summary>
    public long Seed { get; }

    /// <summary>Wall time of the run.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>
    /// Writes the images as a PNG grid with one row per label (ascending) and that label's samples across
    /// (<see cref="GridLayout.ByLabel"/>). Values are clamped to [0, 1]; the file is written atomically.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="scale">Integer upscaling factor (nearest neighbour).</param>
    /// <param name="padding">Pixels between cells before scaling.</param>
    public void SaveGrid(string path, int scale = 1, int padding = 2)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ImageIO.SaveGrid(images, GridLayout.ByLabel(Labels), path, scale, padding);
    }

    /// <summary>
    /// Writes the denoising trajectory as a PNG grid: one row per captured step (noisiest at the top, x_0 at the
    /// bottom), one column per chosen image.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="imageIndices">Which images to show, by batch index; null shows the first sample of each distinct
    /// label, in ascending label order.</param>
    /// <param name="scale">Integer upscaling factor (nearest neighbour).</param>
    /// <param name="padding">Pixels between cells before scaling.</param>
    /// <exception cref="InvalidOperationException">No steps were captured.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the batch.</exception>
    public void SaveSteps(string path, IReadOnlyList<int>? imageIndices = null, int scale = 1, int padding = 2)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (steps is null)
            throw new InvalidOperationException("No intermediate steps were captured: set GuidedSamplerOptions.CaptureEvery to a positive interval.");
        int[] columns = imageIndices?.ToArray() ?? Labels.Select((label, index) => (label, index))
            .GroupBy(p => p.label).OrderBy(g => g.Key).Select(g => g.First().index).ToArray();
        if (columns.Length == 0)
            throw new ArgumentException("At least one image index is needed.", nameof(imageIndices));
        foreach (int i in columns)
            if (i < 0 || i >= Labels.Count)
                throw new ArgumentOutOfRangeException(nameof(imageIndices), i, $"Image indices must lie in 0..{Labels.Count - 1}.");

        using var scope = NewDisposeScope();
        var selected = steps.index_select(1, tensor(columns.Select(i => (long)i).ToArray(), device: steps.device));
        var rows = selected.reshape(-1, selected.shape[2], selected.shape[3], selected.shape[4]);
        ImageIO.SaveGrid(rows, columns.Length, path, scale, padding);
    }

    /// <summary>Disposes <see cref="Images"/> and <see cref="Steps"/>.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        images.Dispose();
        steps?.Dispose();
    }
}
