using DiffusionClassifier.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Data;

public sealed class MnistDatasetTests : IDisposable
{
    private const int Side = 28;
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsASplitFromAFolderAndScalesPixelsBy255(bool gzip)
    {
        var (pixels, labels) = WriteSplit(MnistSplit.Test, count: 6, gzip: gzip, seed: 3);
        using var data = MnistDataset.Load(temp.Path, MnistSplit.Test);

        Assert.Equal(6, data.Count);
        Assert.Equal((Side, Side, 10), (data.Height, data.Width, data.Classes));
        Assert.Equal(new long[] { 6, 1, Side, Side }, data.Images.shape);
        Assert.Equal(ScalarType.Float32, data.Images.dtype);
        Assert.Equal(ScalarType.Int64, data.Labels.dtype);
        var values = data.Images.data<float>().ToArray();
        for (int i = 0; i < pixels.Length; i++)
            Assert.True(Math.Abs(values[i] - pixels[i] / 255.0) < 1e-7, $"pixel {i}: {pixels[i]} -> {values[i]}");
        Assert.Equal(0f, values.Min());
        Assert.Equal(labels.Select(l => (long)l), data.Labels.data<long>().ToArray());
    }

    [Fact]
    public void LoadsBothSplitsAndTheDottedNameVariant()
    {
        WriteSplit(MnistSplit.Train, count: 9, seed: 1);
        var (_, testLabels) = WriteSplit(MnistSplit.Test, count: 4, seed: 2);
        File.Move(temp.File(MnistFiles.TestLabels), temp.File("t10k-labels.idx1-ubyte"));
        using var train = MnistDataset.Load(temp.Path, MnistSplit.Train);
        using var test = MnistDataset.Load(temp.Path, MnistSplit.Test);
        Assert.Equal(9, train.Count);
        Assert.Equal(testLabels.Select(l => (long)l), test.Labels.data<long>().ToArray());
    }

    [Fact]
    public void ValidationIsTheLastTwelfthOfTheTrainingFileAndTheRestIsDisjointFromIt()
    {
        WriteSplit(MnistSplit.Train, count: 30, seed: 4);
        using var train = MnistDataset.Load(temp.Path, MnistSplit.Train);
        using var fit = MnistDataset.Load(temp.Path, MnistSplit.TrainWithoutValidation);
        using var validation = MnistDataset.Load(temp.Path, MnistSplit.Validation);
        Assert.Equal(5000, MnistDataset.ValidationCount(60000));
        Assert.Equal(2, MnistDataset.ValidationCount(30));
        Assert.Equal((28, 2), (fit.Count, validation.Count));
        using var together = cat([fit.Images, validation.Images], 0);
        Assert.True(together.equal(train.Images).all().item<bool>());
        using var labels = cat([fit.Labels, validation.Labels], 0);
        Assert.True(labels.equal(train.Labels).all().item<bool>());
        Assert.Contains("items 28..29", validation.Source);

        // A limit applies within the split.
        using var first = MnistDataset.Load(temp.Path, MnistSplit.Validation, new MnistDatasetOptions { Limit = 1 });
        Assert.Equal(1, first.Count);
        using var expected = validation.Images.narrow(0, 0, 1);
        Assert.True(first.Images.equal(expected).all().item<bool>());
    }

    [Fact]
    public void TooFewTrainingItemsForAValidationSplitIsAClearError()
    {
        WriteSplit(MnistSplit.Train, count: 11, seed: 4);
        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(temp.Path, MnistSplit.Validation));
        Assert.Contains("11 training item(s)", e.Message);
    }

    [Fact]
    public void CountMismatchNamesBothFiles()
    {
        WriteSplit(MnistSplit.Train, count: 5, seed: 1);
        IdxFile.WriteLabels(temp.File(MnistFiles.TrainLabels), IdxBytes.Labels(4, 10, 1));
        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(temp.Path, MnistSplit.Train));
        Assert.Contains("5 images", e.Message);
        Assert.Contains("4 labels", e.Message);
        Assert.Contains(MnistFiles.TrainImages, e.Message);
        Assert.Contains(MnistFiles.TrainLabels, e.Message);
    }

    [Fact]
    public void LabelsMustBeBelowTheClassCount()
    {
        WriteSplit(MnistSplit.Train, count: 5, seed: 1);
        IdxFile.WriteLabels(temp.File(MnistFiles.TrainLabels), [1, 2, 3, 10, 4]);
        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(temp.Path, MnistSplit.Train));
        Assert.Contains("label 10 at index 3", e.Message);
        Assert.Contains("0..9", e.Message);

        using var eleven = MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Classes = 11 });
        Assert.Equal(10L, eleven.Labels[3].item<long>());
    }

    [Fact]
    public void ImageSizeIsChecked()
    {
        IdxFile.WriteImages(temp.File(MnistFiles.TestImages), new byte[3 * 8 * 8], 3, 8, 8);
        IdxFile.WriteLabels(temp.File(MnistFiles.TestLabels), [0, 1, 2]);
        var e = Assert.Throws<InvalidDataException>(() => MnistDataset.Load(temp.Path, MnistSplit.Test));
        Assert.Contains("8 x 8", e.Message);
        Assert.Contains("28 x 28", e.Message);

        using var any = MnistDataset.Load(temp.Path, MnistSplit.Test, new MnistDatasetOptions { Height = null, Width = null });
        Assert.Equal(new long[] { 3, 1, 8, 8 }, any.Images.shape);
    }

    [Fact]
    public void MissingFilesAndFoldersAreReported()
    {
        Assert.Throws<DirectoryNotFoundException>(() => MnistDataset.Load(temp.File("nope"), MnistSplit.Train));
        var e = Assert.Throws<FileNotFoundException>(() => MnistDataset.Load(temp.Path, MnistSplit.Train));
        Assert.Contains(MnistFiles.TrainImages + ".gz", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Classes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Limit = 0 }));
    }

    [Fact]
    public void LimitKeepsTheFirstItems()
    {
        var (pixels, labels) = WriteSplit(MnistSplit.Train, count: 10, seed: 4);
        using var data = MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Limit = 3 });
        Assert.Equal(3, data.Count);
        Assert.Equal(labels.Take(3).Select(l => (long)l), data.Labels.data<long>().ToArray());
        Assert.Equal(pixels[(3 * Side * Side - 1)] / 255f, data.Images[2, 0, Side - 1, Side - 1].item<float>(), 6);
    }

    [Fact]
    public void OffsetSkipsItemsBeforeTheLimitInFilesAndInSplits()
    {
        var (pixels, labels) = WriteSplit(MnistSplit.Train, count: 30, seed: 4);
        using var data = MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Offset = 7, Limit = 3 });
        Assert.Equal(3, data.Count);
        Assert.Equal(labels.Skip(7).Take(3).Select(l => (long)l), data.Labels.data<long>().ToArray());
        Assert.Equal(pixels[7 * Side * Side] / 255f, data.Images[0, 0, 0, 0].item<float>(), 6);
        Assert.Equal(pixels[10 * Side * Side - 1] / 255f, data.Images[2, 0, Side - 1, Side - 1].item<float>(), 6);
        Assert.Contains("items 7..9", data.Source);

        // Within a split, the offset counts from the split's first item; without a limit it runs to the split's end.
        using var all = MnistDataset.Load(temp.Path, MnistSplit.Train);
        using var rest = MnistDataset.Load(temp.Path, MnistSplit.TrainWithoutValidation, new MnistDatasetOptions { Offset = 20 });
        Assert.Equal(8, rest.Count); // 30 items, the last 2 are validation
        using var expected = all.Images.narrow(0, 20, 8);
        Assert.True(rest.Images.equal(expected).all().item<bool>());
        Assert.Contains("items 20..27", rest.Source);
        using var lastValidation = MnistDataset.Load(temp.Path, MnistSplit.Validation, new MnistDatasetOptions { Offset = 1 });
        Assert.Equal(1, lastValidation.Count);
        using var last = all.Images.narrow(0, 29, 1);
        Assert.True(lastValidation.Images.equal(last).all().item<bool>());

        var past = Assert.Throws<ArgumentOutOfRangeException>(() =>
            MnistDataset.Load(temp.Path, MnistSplit.TrainWithoutValidation, new MnistDatasetOptions { Offset = 28 }));
        Assert.Equal("Offset", past.ParamName);
        Assert.Contains("Offset 28 is past the end of the training split without validation, which holds 28 item(s)", past.Message);
        var pastFile = Assert.Throws<ArgumentOutOfRangeException>(() =>
            MnistDataset.Load(temp.Path, MnistSplit.Train, new MnistDatasetOptions { Offset = 30 }));
        Assert.Contains("Offset 30", pastFile.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MnistDatasetOptions { Offset = -1 }.Validate());
    }

    [Fact]
    public void ShuffledBatchesCoverEveryIndexOncePerEpochAndRepeatWithTheSeed()
    {
        using var data = Generated(23, seed: 5);
        var firstEpoch = Epoch(data, seed: 42, out var sizes);
        Assert.Equal(new[] { 5, 5, 5, 5, 3 }, sizes);
        Assert.Equal(Enumerable.Range(0, 23).Select(i => (long)i), firstEpoch.Order());
        Assert.NotEqual(Enumerable.Range(0, 23).Select(i => (long)i), firstEpoch);

        Assert.Equal(firstEpoch, Epoch(data, seed: 42, out _));
        Assert.NotEqual(firstEpoch, Epoch(data, seed: 43, out _));

        // One generator over two epochs: two different permutations, each complete.
        using var generator = new Generator(7);
        var a = data.Batches(5, shuffle: true, generator).SelectMany(TakeIndices).ToArray();
        var b = data.Batches(5, shuffle: true, generator).SelectMany(TakeIndices).ToArray();
        Assert.NotEqual(a, b);
        Assert.Equal(a.Order(), b.Order());
    }

    [Fact]
    public void BatchesHoldTheRowsTheirIndicesName()
    {
        using var data = Generated(11, seed: 6);
        using var generator = new Generator(3);
        foreach (var batch in data.Batches(4, shuffle: true, generator))
        {
            using (batch)
            {
                Assert.Equal(new long[] { batch.Count, 1, Side, Side }, batch.Images.shape);
                for (int i = 0; i < batch.Count; i++)
                {
                    int index = (int)batch.Indices[i];
                    Assert.True(batch.Images[i].SameAs(data.Images[index]));
                    Assert.Equal(data.Labels[index].item<long>(), batch.Labels[i].item<long>());
                }
            }
        }
    }

    [Fact]
    public void UnshuffledBatchesKeepTheOrderAndDropLastDropsTheRemainder()
    {
        using var data = Generated(11, seed: 7);
        var order = data.Batches(4).SelectMany(TakeIndices).ToArray();
        Assert.Equal(Enumerable.Range(0, 11).Select(i => (long)i), order);
        var sizes = new List<int>();
        foreach (var batch in data.Batches(4, dropLast: true))
            using (batch)
                sizes.Add(batch.Count);
        Assert.Equal(new[] { 4, 4 }, sizes);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Batches(0));
    }

    [Fact]
    public void GetBatchTakeAndSubsetCopyTheRightItems()
    {
        using var data = Generated(8, seed: 8);
        using (var batch = data.GetBatch([7, 0, 7]))
        {
            var (images, labels) = batch;
            Assert.True(images[0].SameAs(data.Images[7]));
            Assert.True(images[1].SameAs(data.Images[0]));
            Assert.Equal(new[] { data.Labels[7].item<long>(), data.Labels[0].item<long>(), data.Labels[7].item<long>() }, labels.data<long>().ToArray());
        }
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => data.GetBatch([1, 8]));
        Assert.Contains("position 1", bad.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.GetBatch([-1]));
        Assert.Throws<ArgumentException>(() => data.GetBatch([]));

        using var first = data.Take(3);
        Assert.Equal(3, first.Count);
        Assert.True(first.Images.SameAs(data.Images[..3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Take(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Take(9));

        using var subset = data.Subset([5, 2]);
        Assert.True(subset.Images[0].SameAs(data.Images[5]));
        Assert.Equal(data.Labels[2].item<long>(), subset.Labels[1].item<long>());

        // The copies are independent of the source.
        data.Dispose();
        Assert.Equal(3, first.Images.shape[0]);
        Assert.Equal(2, subset.Labels.numel());
    }

    [Fact]
    public void FromBytesValidatesItsInput()
    {
        Assert.Throws<ArgumentException>(() => MnistDataset.FromBytes(new byte[10], [1], 1, 3, 3));
        Assert.Throws<ArgumentException>(() => MnistDataset.FromBytes(new byte[9], [1, 2], 1, 3, 3));
        var e = Assert.Throws<ArgumentException>(() => MnistDataset.FromBytes(new byte[9], [5], 1, 3, 3, classes: 5));
        Assert.Contains("Label 5 at index 0", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MnistDataset.FromBytes(new byte[9], [0], 1, 3, 3, classes: 0));
    }

    [Fact]
    public void UseAfterDisposeThrows()
    {
        var data = Generated(3, seed: 9);
        data.Dispose();
        data.Dispose();
        Assert.Throws<ObjectDisposedException>(() => data.Images);
        Assert.Throws<ObjectDisposedException>(() => data.Labels);
        Assert.Throws<ObjectDisposedException>(() => data.Batches(2));
        Assert.Throws<ObjectDisposedException>(() => data.GetBatch([0]));
        Assert.Throws<ObjectDisposedException>(() => data.Take(1));
    }

    [Fact]
    public void TheDatasetOwnsItsTensorsEvenWhenLoadedInsideADisposeScope()
    {
        MnistDataset data;
        using (NewDisposeScope())
            data = Generated(4, seed: 10);
        using (data)
        {
            Assert.False(data.Images.IsInvalid);
            Assert.Equal(4, data.Labels.numel());
        }
    }

    private static IEnumerable<long> TakeIndices(MnistBatch batch)
    {
        using (batch)
            return batch.Indices.ToArray();
    }

    private static long[] Epoch(MnistDataset data, ulong seed, out int[] sizes)
    {
        using var generator = new Generator(seed);
        var order = new List<long>();
        var batchSizes = new List<int>();
        foreach (var batch in data.Batches(5, shuffle: true, generator))
        {
            using (batch)
            {
                order.AddRange(batch.Indices);
                batchSizes.Add(batch.Count);
            }
        }
        sizes = [.. batchSizes];
        return [.. order];
    }

    private static MnistDataset Generated(int count, int seed) =>
        MnistDataset.FromBytes(IdxBytes.Random(count * Side * Side, seed), IdxBytes.Labels(count, 10, seed), count, Side, Side);

    private (byte[] Pixels, byte[] Labels) WriteSplit(MnistSplit split, int count, int seed, bool gzip = false)
    {
        var pixels = IdxBytes.Random(count * Side * Side, seed);
        pixels[0] = 0;
        pixels[1] = 255;
        var labels = IdxBytes.Labels(count, 10, seed);
        var (imageName, labelName) = MnistDataset.FileNames(split);
        string suffix = gzip ? ".gz" : "";
        IdxFile.WriteImages(temp.File(imageName + suffix), pixels, count, Side, Side, gzip);
        IdxFile.WriteLabels(temp.File(labelName + suffix), labels, gzip);
        return (pixels, labels);
    }
}

internal static class TensorComparison
{
    /// <summary>True when both tensors have the same shape and bit-identical float values.</summary>
    public static bool SameAs(this Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.data<float>().ToArray().SequenceEqual(b.data<float>().ToArray());
}
