using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Data;

/// <summary>
/// An MNIST-format dataset in memory: images as float32 [N, 1, H, W] with pixel / 255 in [0, 1] (no normalisation
/// to [-1, 1], as the reference) and labels as int64 [N]. Loads any pair of unsigned-byte idx files (MNIST,
/// Fashion-MNIST, ...), raw or gzipped, and validates that the counts match, the labels are below the class count
/// and the images have the expected size.
/// </summary>
/// <remarks>
/// Owns its two CPU tensors (<see cref="Images"/> and <see cref="Labels"/>) and frees them on <see cref="Dispose"/>.
/// Everything it returns (batches, subsets) is a new object the caller owns. Reading members may be called from
/// several threads at once; <see cref="Dispose"/> must not race with them.
/// </remarks>
public sealed class MnistDataset : IDisposable
{
    private readonly Tensor images;
    private readonly Tensor labels;
    private bool disposed;

    private MnistDataset(Tensor images, Tensor labels, int classes, string source)
    {
        // The dataset owns these: keep a caller's dispose scope from freeing them under it.
        this.images = images.DetachFromDisposeScope();
        this.labels = labels.DetachFromDisposeScope();
        Count = (int)images.shape[0];
        Height = (int)images.shape[2];
        Width = (int)images.shape[3];
        Classes = classes;
        Source = source;
    }

    /// <summary>The file names of a split, without the optional <c>.gz</c> suffix: (images, labels).</summary>
    /// <param name="split">The split.</param>
    public static (string Images, string Labels) FileNames(MnistSplit split) => split switch
    {
        MnistSplit.Train or MnistSplit.TrainWithoutValidation or MnistSplit.Validation => (MnistFiles.TrainImages, MnistFiles.TrainLabels),
        MnistSplit.Test => (MnistFiles.TestImages, MnistFiles.TestLabels),
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Unknown split."),
    };

    /// <summary>
    /// Loads one split from a folder holding the standard file names (<see cref="FileNames"/>), each raw or with a
    /// <c>.gz</c> suffix (the raw file wins when both exist). Works for MNIST and for Fashion-MNIST
    /// (e.g. <c>/usr/share/datasets/fashion-mnist</c> from Debian's <c>dataset-fashion-mnist</c>).
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <param name="split">Which split.</param>
    /// <param name="options">Validation options; null for the defaults (10 classes, 28 x 28).</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">A file is missing (the message lists the names tried).</exception>
    /// <exception cref="InvalidDataException">A file is damaged or the pair is inconsistent.</exception>
    public static MnistDataset Load(string folder, MnistSplit split, MnistDatasetOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        options?.Validate();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"The MNIST folder '{folder}' does not exist.");
        var (imageName, labelName) = FileNames(split);
        if (split is MnistSplit.Train or MnistSplit.Test)
            return LoadFiles(FindFile(folder, imageName), FindFile(folder, labelName), options);

        // Carve the split out of the whole training file, then apply the limit within it.
        var whole = options is null ? null : new MnistDatasetOptions
        {
            Classes = options.Classes, Height = options.Height, Width = options.Width, MaxPayloadBytes = options.MaxPayloadBytes,
        };
        using var all = LoadFiles(FindFile(folder, imageName), FindFile(folder, labelName), whole);
        int validation = ValidationCount(all.Count);
        if (validation < 1)
            throw new InvalidDataException($"'{folder}' holds {all.Count} training item(s): too few for a validation split (the last twelfth).");
        int start = split == MnistSplit.Validation ? all.Count - validation : 0;
        int count = split == MnistSplit.Validation ? validation : all.Count - validation;
        string name = split == MnistSplit.Validation ? "validation split" : "training split without validation";
        int offset = options?.Offset ?? 0;
        ThrowIfOffsetPastEnd(offset, count, $"the {name}");
        start += offset;
        count -= offset;
        if (options?.Limit is int limit)
            count = Math.Min(count, limit);
        return all.Slice(start, count, $"{name} (items {start}..{start + count - 1}) of {all.Source}");
    }

    /// <summary>
    /// The size of the validation split of a training file of <paramref name="trainingItems"/> items: its last twelfth,
    /// rounded down (5,000 of MNIST's 60,000).
    /// </summary>
    /// <param name="trainingItems">Items in the training file.</param>
    public static int ValidationCount(int trainingItems) => trainingItems / 12;

    /// <summary>Loads an explicit pair of idx files (raw or gzipped).</summary>
    /// <param name="imagesPath">An idx3 image file.</param>
    /// <param name="labelsPath">An idx1 label file with as many items.</param>
    /// <param name="options">Validation options; null for the defaults.</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is damaged or the pair is inconsistent.</exception>
    public static MnistDataset LoadFiles(string imagesPath, string labelsPath, MnistDatasetOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagesPath);
        ArgumentException.ThrowIfNullOrEmpty(labelsPath);
        options ??= new MnistDatasetOptions();
        options.Validate();
        var img = IdxFile.ReadImages(imagesPath, options.MaxPayloadBytes);
        var lab = IdxFile.ReadLabels(labelsPath, options.MaxPayloadBytes);
        if (img.Count != lab.Length)
            throw new InvalidDataException(
                $"'{imagesPath}' holds {img.Count} images but '{labelsPath}' holds {lab.Length} labels; the counts must match.");
        return Create(img, lab, options, $"{imagesPath} + {labelsPath}", imagesPath, labelsPath);
    }

    /// <summary>Builds a dataset from raw bytes (e.g. generated data in tests).</summary>
    /// <param name="pixels"><paramref name="count"/> x <paramref name="height"/> x <paramref name="width"/> bytes.</param>
    /// <param name="labels"><paramref name="count"/> labels.</param>
    /// <param name="count">Number of items (positive).</param>
    /// <param name="height">Image height (positive).</param>
    /// <param name="width">Image width (positive).</param>
    /// <param name="classes">Number of classes; every label must be below it.</param>
    /// <exception cref="ArgumentException">Sizes do not match, or a label is out of range.</exception>
    public static MnistDataset FromBytes(byte[] pixels, byte[] labels, int count, int height, int width, int classes = 10)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        var img = new IdxData([count, height, width], pixels);
        if (labels.Length != count)
            throw new ArgumentException($"There are {labels.Length} labels for {count} images; the counts must match.", nameof(labels));
        var options = new MnistDatasetOptions { Classes = classes, Height = null, Width = null };
        try
        {
            options.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentOutOfRangeException(nameof(classes), classes, e.Message);
        }
        int bad = FirstLabelAtLeast(labels, classes);
        if (bad >= 0)
            throw new ArgumentException($"Label {labels[bad]} at index {bad} is out of range 0..{classes - 1}.", nameof(labels));
        return Create(new IdxImages(count, height, width, img.Data), labels, options, "bytes", null, null);
    }

    /// <summary>Number of items N.</summary>
    public int Count { get; }

    /// <summary>Image height H.</summary>
    public int Height { get; }

    /// <summary>Image width W.</summary>
    public int Width { get; }

    /// <summary>Number of classes; every label is in 0..Classes-1.</summary>
    public int Classes { get; }

    /// <summary>Where the data came from (file paths), for messages and logs.</summary>
    public string Source { get; }

    /// <summary>All images, float32 [N, 1, H, W], pixel / 255. Owned by the dataset: do not dispose or modify.</summary>
    /// <exception cref="ObjectDisposedException">The dataset is disposed.</exception>
    public Tensor Images
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return images;
        }
    }

    /// <summary>All labels, int64 [N]. Owned by the dataset: do not dispose or modify.</summary>
    /// <exception cref="ObjectDisposedException">The dataset is disposed.</exception>
    public Tensor Labels
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return labels;
        }
    }

    /// <summary>Copies the items at <paramref name="indices"/> into a new batch the caller owns.</summary>
    /// <param name="indices">Item indices in 0..Count-1, at least one; repeats are allowed.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    /// <exception cref="ArgumentException">No indices.</exception>
    public MnistBatch GetBatch(ReadOnlySpan<long> indices)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (indices.IsEmpty)
            throw new ArgumentException("At least one index is needed.", nameof(indices));
        for (int i = 0; i < indices.Length; i++)
            if (indices[i] < 0 || indices[i] >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"Index at position {i} is outside 0..{Count - 1}.");
        return Gather(indices.ToArray());
    }

    /// <summary>
    /// Enumerates the dataset in batches; every item appears exactly once per enumeration. With
    /// <paramref name="shuffle"/>, the order is a random permutation drawn from <paramref name="generator"/> (a new
    /// permutation each enumeration; the same generator state gives the same order).
    /// </summary>
    /// <param name="batchSize">Items per batch (positive); the last batch may be smaller unless
    /// <paramref name="dropLast"/>.</param>
    /// <param name="shuffle">Shuffle the order.</param>
    /// <param name="generator">The random source for shuffling; null uses TorchSharp's global generator
    /// (not reproducible unless it is seeded).</param>
    /// <param name="dropLast">Skip a final incomplete batch.</param>
    /// <returns>Batches the caller owns and must dispose.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is not positive.</exception>
    public IEnumerable<MnistBatch> Batches(int batchSize, bool shuffle = false, Generator? generator = null, bool dropLast = false)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        return Iterate(batchSize, shuffle, generator, dropLast);
    }

    /// <summary>A new dataset holding copies of the first <paramref name="count"/> items.</summary>
    /// <param name="count">1..Count.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is out of range.</exception>
    public MnistDataset Take(int count)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (count < 1 || count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must lie in 1..{Count}.");
        using var scope = NewDisposeScope();
        var img = images.narrow(0, 0, count).clone();
        var lab = labels.narrow(0, 0, count).clone();
        return new MnistDataset(img.MoveToOuterDisposeScope(), lab.MoveToOuterDisposeScope(), Classes, $"first {count} of {Source}");
    }

    private MnistDataset Slice(int start, int count, string source)
    {
        using var scope = NewDisposeScope();
        var img = images.narrow(0, start, count).clone();
        var lab = labels.narrow(0, start, count).clone();
        return new MnistDataset(img.MoveToOuterDisposeScope(), lab.MoveToOuterDisposeScope(), Classes, source);
    }

    /// <summary>A new dataset holding copies of the items at <paramref name="indices"/>, in that order.</summary>
    /// <param name="indices">Item indices in 0..Count-1, at least one; repeats are allowed.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    public MnistDataset Subset(ReadOnlySpan<long> indices)
    {
        using var batch = GetBatch(indices);
        return new MnistDataset(batch.Images.clone(), batch.Labels.clone(), Classes, $"subset of {Source}");
    }

    /// <summary>Frees the image and label tensors.</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        images.Dispose();
        labels.Dispose();
    }

    private IEnumerable<MnistBatch> Iterate(int batchSize, bool shuffle, Generator? generator, bool dropLast)
    {
        long[] order;
        if (shuffle)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            using var perm = torch.randperm(Count, generator: generator, dtype: ScalarType.Int64);
            order = perm.data<long>().ToArray();
        }
        else
        {
            order = new long[Count];
            for (int i = 0; i < order.Length; i++)
                order[i] = i;
        }
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int size = Math.Min(batchSize, order.Length - start);
            if (size < batchSize && dropLast)
                yield break;
            ObjectDisposedException.ThrowIf(disposed, this);
            // Build the batch outside any caller scope that is open across the yield.
            yield return Gather(order.AsSpan(start, size).ToArray());
        }
    }

    private MnistBatch Gather(long[] indices)
    {
        using var scope = NewDisposeScope();
        using var index = torch.tensor(indices, dtype: ScalarType.Int64);
        var img = images.index_select(0, index);
        var lab = labels.index_select(0, index);
        return new MnistBatch(img.MoveToOuterDisposeScope(), lab.MoveToOuterDisposeScope(), indices);
    }

    private static MnistDataset Create(IdxImages img, byte[] lab, MnistDatasetOptions options, string source, string? imagesPath, string? labelsPath)
    {
        if (options.Height is int h && img.Rows != h || options.Width is int w && img.Columns != w)
            throw new InvalidDataException(
                $"'{imagesPath}' holds {img.Rows} x {img.Columns} images, but {options.Height?.ToString() ?? "any"} x {options.Width?.ToString() ?? "any"} are required.");
        int bad = FirstLabelAtLeast(lab, options.Classes);
        if (bad >= 0)
            throw new InvalidDataException($"'{labelsPath}': label {lab[bad]} at index {bad} is out of range 0..{options.Classes - 1}.");

        int offset = options.Offset;
        ThrowIfOffsetPastEnd(offset, img.Count, $"'{imagesPath ?? source}'");
        int n = options.Limit is int limit ? Math.Min(limit, img.Count - offset) : img.Count - offset;
        if (offset > 0)
            source = $"items {offset}..{offset + n - 1} of {source}";
        long pixelsPerImage = (long)img.Rows * img.Columns;
        using var scope = NewDisposeScope();
        var raw = n == img.Count ? img.Pixels : img.Pixels.AsSpan(checked((int)(offset * pixelsPerImage)), checked((int)(n * pixelsPerImage))).ToArray();
        using var bytes = torch.tensor(raw, [n, 1, img.Rows, img.Columns], dtype: ScalarType.Byte);
        var images = bytes.to_type(ScalarType.Float32).div_(255f);
        var labelValues = new long[n];
        for (int i = 0; i < n; i++)
            labelValues[i] = lab[offset + i];
        var labels = torch.tensor(labelValues, dtype: ScalarType.Int64);
        return new MnistDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), options.Classes, source);
    }

    private static void ThrowIfOffsetPastEnd(int offset, int count, string what)
    {
        if (offset >= count)
            throw new ArgumentOutOfRangeException(nameof(MnistDatasetOptions.Offset), offset,
                $"Offset {offset} is past the end of {what}, which holds {count} item(s).");
    }

    private static int FirstLabelAtLeast(byte[] labels, int classes)
    {
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= classes)
                return i;
        return -1;
    }

    private static string FindFile(string folder, string name)
    {
        // The official names, the .gz distribution form, and the dotted variant some mirrors use.
        string dotted = name.Replace("-idx", ".idx", StringComparison.Ordinal);
        string[] candidates = [name, name + ".gz", dotted, dotted + ".gz"];
        foreach (var candidate in candidates)
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path))
                return path;
        }
        throw new FileNotFoundException(
            $"No '{name}' in '{folder}' (tried {string.Join(", ", candidates)}).", Path.Combine(folder, name));
    }
}
