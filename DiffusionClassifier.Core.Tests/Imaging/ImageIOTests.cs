using DiffusionClassifier.Imaging;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Imaging;

public sealed class ImageIOTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("dc-imageio-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string PathOf(string name) => Path.Combine(folder, name);

    private static Tensor Random(long[] shape, long seed)
    {
        var g = new Generator((ulong)seed, CPU);
        return rand(shape, ScalarType.Float32, CPU, generator: g);
    }

    private static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    [Fact]
    public void GrayscaleRoundTripIsWithinHalfAQuantisationStep()
    {
        using var scope = NewDisposeScope();
        // Non-square so that a transposition would be caught; values on and off the 8-bit grid.
        var image = Random(new long[] { 1, 5, 7 }, 1);
        image[0, 1, 4] = tensor(1f);
        image[0, 3, 0] = tensor(0f);
        string path = PathOf("round.png");
        ImageIO.SavePng(image, path);

        var loaded = ImageIO.LoadImage(path, width: 7, height: 5);
        Assert.Equal(new long[] { 1, 1, 5, 7 }, loaded.shape);
        Assert.Equal(ScalarType.Float32, loaded.dtype);
        float[] expected = Values(image), actual = Values(loaded);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.InRange(Math.Abs(expected[i] - actual[i]), 0, 0.5 / 255 + 1e-6);
            // Exactly the 8-bit quantisation of the input.
            Assert.Equal(Math.Round(expected[i] * 255), actual[i] * 255, 3);
        }
        Assert.Equal(1f, loaded[0, 0, 1, 4].item<float>());
        Assert.Equal(0f, loaded[0, 0, 3, 0].item<float>());
    }

    [Fact]
    public void RgbImageIsWrittenInColourAndReadAsBt601Luminance()
    {
        using var scope = NewDisposeScope();
        var image = Random(new long[] { 3, 4, 6 }, 2);
        string path = PathOf("rgb.png");
        ImageIO.SavePng(image, path);

        using (var bitmap = SKBitmap.Decode(path))
        {
            Assert.Equal(6, bitmap.Width);
            Assert.Equal(4, bitmap.Height);
            var pixel = bitmap.GetPixel(5, 2); // x = 5, y = 2
            Assert.Equal(Math.Round(image[0, 2, 5].item<float>() * 255), pixel.Red);
            Assert.Equal(Math.Round(image[1, 2, 5].item<float>() * 255), pixel.Green);
            Assert.Equal(Math.Round(image[2, 2, 5].item<float>() * 255), pixel.Blue);
        }

        var loaded = ImageIO.LoadImage(path, 6, 4);
        var q = image.mul(255).round();
        var luma = (q[0] * 0.299 + q[1] * 0.587 + q[2] * 0.114) / 255;
        Assert.True(loaded[0, 0].allclose(luma, rtol: 0, atol: 1e-5), "luminance differs");
    }

    [Fact]
    public void WritingClampsToTheUnitIntervalAndRejectsNaN()
    {
        using var scope = NewDisposeScope();
        var image = tensor(new float[] { -3f, 0.25f, 1f, 7f }, new long[] { 1, 1, 4 });
        string path = PathOf("clamp.png");
        ImageIO.SavePng(image, path);
        var loaded = ImageIO.LoadImage(path, 4, 1);
        Assert.Equal(new[] { 0f, 64 / 255f, 1f, 1f }, Values(loaded));

        image[0, 0, 1] = tensor(float.NaN);
        var error = Assert.Throws<ArgumentException>(() => ImageIO.SavePng(image, PathOf("nan.png")));
        Assert.Contains("NaN", error.Message);
        Assert.False(File.Exists(PathOf("nan.png")));
    }

    [Fact]
    public void ScaleRepeatsEveryPixelAsABlock()
    {
        using var scope = NewDisposeScope();
        var image = Random(new long[] { 1, 3, 2 }, 3).mul(255).round().div(255);
        string path = PathOf("scaled.png");
        ImageIO.SavePng(image, path, scale: 3);
        var loaded = ImageIO.LoadImage(path, 6, 9);
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 6; x++)
                Assert.Equal(image[0, y / 3, x / 3].item<float>(), loaded[0, 0, y, x].item<float>(), 5);
    }

    [Fact]
    public void GridPlacesImageRByCInReadingOrderWithPaddingAndEmptyCells()
    {
        using var scope = NewDisposeScope();
        const int n = 5, h = 4, w = 3, pad = 2, cols = 3;
        var images = stack(Enumerable.Range(0, n).Select(i => full(new long[] { 1, h, w }, (i + 1) / 10.0, ScalarType.Float32)).ToArray());

        var grid = ImageGrid.Compose(images, cols, pad, padValue: 0.5);
        Assert.Equal(new long[] { 1, 2 * (h + pad) + pad, cols * (w + pad) + pad }, grid.shape);
        AssertGrid(grid[0], exact: true);

        // Through a PNG file: the same picture, quantised.
        string path = PathOf("grid.png");
        ImageIO.SaveGrid(images, cols, path, padding: pad);
        var loaded = ImageIO.LoadImage(path, (int)grid.shape[2], (int)grid.shape[1]);
        Assert.True(loaded[0, 0].allclose(grid[0], rtol: 0, atol: 0.5 / 255 + 1e-6));

        static void AssertGrid(Tensor g, bool exact)
        {
            int height = (int)g.shape[0], width = (int)g.shape[1];
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    int ry = y - pad, rx = x - pad;
                    bool inCell = ry >= 0 && rx >= 0 && ry % (h + pad) < h && rx % (w + pad) < w;
                    int index = inCell ? (ry / (h + pad)) * cols + rx / (w + pad) : -1;
                    double expected = index >= 0 && index < n ? (index + 1) / 10.0 : 0.5;
                    Assert.Equal(expected, g[y, x].item<float>(), exact ? 6 : 2);
                }
            }
        }
    }

    [Fact]
    public void ByLabelLayoutPutsOneLabelPerRowInBatchOrder()
    {
        var layout = GridLayout.ByLabel(new[] { 3, 1, 3, 1, 1 });
        Assert.Equal(2, layout.Rows);
        Assert.Equal(3, layout.Columns);
        Assert.Equal(new[] { 1, 3 }, layout.RowLabels);
        Assert.Equal(new[] { 1, 3, 4, 0, 2, -1 }, layout.Cells);
        Assert.Equal(2, layout[1, 1]);

        using var scope = NewDisposeScope();
        var images = stack(Enumerable.Range(0, 5).Select(i => full(new long[] { 1, 2, 2 }, i / 4.0, ScalarType.Float32)).ToArray());
        var grid = ImageGrid.Compose(images, layout, padding: 1, padValue: 0.5);
        Assert.Equal(new long[] { 1, 2 * 3 + 1, 3 * 3 + 1 }, grid.shape);
        Assert.Equal(4 / 4.0, grid[0, 1, 7].item<float>(), 6);   // row 0 (label 1), column 2 -> image 4
        Assert.Equal(2 / 4.0, grid[0, 4, 4].item<float>(), 6);   // row 1 (label 3), column 1 -> image 2
        Assert.Equal(0.5, grid[0, 4, 7].item<float>(), 6);       // row 1, column 2 is empty

        Assert.Throws<ArgumentException>(() => ImageGrid.Compose(images.narrow(0, 0, 3), layout));
        Assert.Throws<ArgumentException>(() => GridLayout.ByLabel(Array.Empty<int>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => GridLayout.RowMajor(4, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GridLayout(1, 2, new[] { 0, -2 }));
        Assert.Throws<ArgumentException>(() => new GridLayout(2, 2, new[] { 0, 1, 2 }));
    }

    [Fact]
    public void RowMajorLayoutNeverHasMoreColumnsThanImages()
    {
        var layout = GridLayout.RowMajor(2, 10);
        Assert.Equal(1, layout.Rows);
        Assert.Equal(2, layout.Columns);
        layout = GridLayout.RowMajor(7, 3);
        Assert.Equal(3, layout.Rows);
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 6, -1, -1 }, layout.Cells);
    }

    [Fact]
    public void LoadingResizesWithAntialiasingAndCanInvert()
    {
        using var scope = NewDisposeScope();
        // 56x56: left half white, right half black.
        var big = zeros(1, 56, 56);
        big[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(0, 28)] = tensor(1f);
        string path = PathOf("big.png");
        ImageIO.SavePng(big, path);

        var small = ImageIO.LoadImage(path);
        Assert.Equal(new long[] { 1, 1, 28, 28 }, small.shape);
        Assert.True(small.narrow(3, 0, 13).eq(1).all().item<bool>());
        Assert.True(small.narrow(3, 15, 13).eq(0).all().item<bool>());
        // The edge is smoothed (antialiasing), not aliased: the two middle columns lie strictly between.
        float a = small[0, 0, 10, 13].item<float>(), b = small[0, 0, 10, 14].item<float>();
        Assert.InRange(a, 0.5f, 0.99f);
        Assert.InRange(b, 0.01f, 0.5f);

        var inverted = ImageIO.LoadImage(path, invert: true);
        Assert.True(inverted.allclose(1 - small, rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void JpegAndTransparentPngAreDecoded()
    {
        using var scope = NewDisposeScope();
        string jpeg = PathOf("gray.jpg");
        using (var bitmap = new SKBitmap(new SKImageInfo(16, 16, SKColorType.Rgba8888, SKAlphaType.Opaque)))
        {
            bitmap.Erase(new SKColor(100, 100, 100));
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 95);
            File.WriteAllBytes(jpeg, data.ToArray());
        }
        var loaded = ImageIO.LoadImage(jpeg, 16, 16);
        Assert.True((loaded - 100 / 255f).abs().max().item<float>() < 3 / 255f);

        string transparent = PathOf("transparent.png");
        using (var bitmap = new SKBitmap(new SKImageInfo(4, 4, SKColorType.Rgba8888, SKAlphaType.Unpremul)))
        {
            bitmap.Erase(new SKColor(0, 0, 0, 0));
            bitmap.SetPixel(1, 2, new SKColor(0, 0, 0, 255));
            using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(transparent, data.ToArray());
        }
        loaded = ImageIO.LoadImage(transparent, 4, 4);
        Assert.Equal(0f, loaded[0, 0, 2, 1].item<float>());          // opaque black stroke
        Assert.Equal(15f, loaded.eq(1f).sum().item<long>());          // the rest is white (transparent over white)
    }

    [Fact]
    public void DamagedOrNonImageFilesThrowInvalidDataExceptionNamingTheFile()
    {
        using var scope = NewDisposeScope();
        string good = PathOf("good.png");
        ImageIO.SavePng(Random(new long[] { 1, 28, 28 }, 4), good);
        byte[] png = File.ReadAllBytes(good);

        var cases = new Dictionary<string, byte[]>
        {
            ["text.png"] = "this is not an image"u8.ToArray(),
            ["empty.png"] = Array.Empty<byte>(),
            ["truncated.png"] = png[..(png.Length / 2)],
            ["garbage.png"] = Enumerable.Range(0, 500).Select(i => (byte)(i * 37 % 251)).ToArray(),
        };
        // A PNG whose signature is intact but whose header chunk is corrupted.
        var badHeader = (byte[])png.Clone();
        for (int i = 16; i < 29; i++) badHeader[i] = 0xFF;
        cases["badheader.png"] = badHeader;

        foreach (var (name, content) in cases)
        {
            string path = PathOf(name);
            File.WriteAllBytes(path, content);
            var error = Assert.Throws<InvalidDataException>(() => ImageIO.LoadImage(path));
            Assert.Contains(name, error.Message);
        }
    }

    [Fact]
    public void MissingFileThrowsFileNotFoundException()
    {
        string path = PathOf("missing.png");
        var error = Assert.Throws<FileNotFoundException>(() => ImageIO.LoadImage(path));
        Assert.Equal(path, error.FileName);
        Assert.Throws<FileNotFoundException>(() => ImageIO.LoadImage(PathOf(Path.Combine("no-such-folder", "x.png"))));
    }

    [Fact]
    public void BadArgumentsThrowNamingTheParameter()
    {
        using var scope = NewDisposeScope();
        var twoChannels = zeros(2, 4, 4);
        Assert.Equal("image", Assert.Throws<ArgumentException>(() => ImageIO.EncodePng(twoChannels)).ParamName);
        Assert.Equal("image", Assert.Throws<ArgumentException>(() => ImageIO.EncodePng(zeros(2, 1, 4, 4))).ParamName);
        Assert.Equal("scale", Assert.Throws<ArgumentOutOfRangeException>(() => ImageIO.EncodePng(zeros(1, 4, 4), 0)).ParamName);
        Assert.Equal("columns", Assert.Throws<ArgumentOutOfRangeException>(() => ImageIO.SaveGrid(zeros(3, 1, 4, 4), 0, PathOf("g.png"))).ParamName);
        Assert.Equal("padding", Assert.Throws<ArgumentOutOfRangeException>(() => ImageIO.SaveGrid(zeros(3, 1, 4, 4), 2, PathOf("g.png"), padding: -1)).ParamName);
        Assert.Equal("images", Assert.Throws<ArgumentException>(() => ImageIO.SaveGrid(zeros(1, 4, 4), 2, PathOf("g.png"))).ParamName);
        Assert.Equal("width", Assert.Throws<ArgumentOutOfRangeException>(() => ImageIO.LoadImage(PathOf("x.png"), 0, 28)).ParamName);
    }

    [Fact]
    public void SavingReplacesAnExistingFileAndLeavesNoTemporaryFiles()
    {
        using var scope = NewDisposeScope();
        string path = PathOf(Path.Combine("sub", "out.png"));
        ImageIO.SavePng(zeros(1, 4, 4), path);
        ImageIO.SavePng(ones(1, 4, 4), path);
        Assert.True(ImageIO.LoadImage(path, 4, 4).eq(1).all().item<bool>());
        Assert.Equal(new[] { "out.png" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }
}
