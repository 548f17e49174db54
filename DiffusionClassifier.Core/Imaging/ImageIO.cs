using System.Runtime.InteropServices;
using DiffusionClassifier.Guards;
using DiffusionClassifier.IO;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Imaging;

/// <summary>
/// Reads images (PNG, JPEG and the other formats SkiaSharp decodes) into tensors and writes tensors as PNG, with
/// SkiaSharp (a dependency of TorchSharp). On Linux the application must reference
/// <c>SkiaSharp.NativeAssets.Linux.NoDependencies</c> for the native library.
/// </summary>
/// <remarks>
/// Pixel values are floats in [0, 1] (0 = black). Writing clamps to [0, 1] and rounds to 8 bits; reading divides by
/// 255. All methods are thread-safe. Files are written atomically (temporary file in the same folder, then moved).
/// </remarks>
public static class ImageIO
{
    /// <summary>Largest decoded image accepted by <see cref="LoadImage(Stream, int, int, bool, string?)"/>, in pixels.</summary>
    public const long MaxDecodedPixels = 64L * 1024 * 1024;

    /// <summary>Writes one image as an 8-bit PNG: grayscale for one channel, RGB for three.</summary>
    /// <param name="image">[C, H, W], [1, C, H, W] or [H, W], C = 1 or 3; values are clamped to [0, 1].</param>
    /// <param name="path">Destination file; its folder is created when missing; an existing file is replaced.</param>
    /// <param name="scale">Integer upscaling factor (nearest neighbour), at least 1.</param>
    public static void SavePng(Tensor image, string path, int scale = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var png = EncodePng(image, scale);
        AtomicFile.Write(path, s => s.Write(png));
    }

    /// <summary>
    /// Writes a batch as one PNG grid, <paramref name="columns"/> images per row in batch order
    /// (see <see cref="ImageGrid"/> for the geometry).
    /// </summary>
    /// <param name="images">[N, C, H, W], C = 1 or 3; values are clamped to [0, 1].</param>
    /// <param name="columns">Images per row, at least 1.</param>
    /// <param name="path">Destination file; written atomically.</param>
    /// <param name="scale">Integer upscaling factor of the whole grid (nearest neighbour; padding scales too).</param>
    /// <param name="padding">Pixels between and around cells before scaling.</param>
    /// <param name="padValue">Value of padding and empty cells; mid grey by default.</param>
    public static void SaveGrid(Tensor images, int columns, string path, int scale = 1, int padding = 2, double padValue = ImageGrid.DefaultPadValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckScale(scale);
        using var grid = ImageGrid.Compose(images, columns, padding, padValue);
        SavePng(grid, path, scale);
    }

    /// <summary>Writes a batch as one PNG grid laid out by <paramref name="layout"/> (e.g. <see cref="GridLayout.ByLabel"/>).</summary>
    /// <param name="images">[N, C, H, W], C = 1 or 3; values are clamped to [0, 1].</param>
    /// <param name="layout">Which image goes into which cell.</param>
    /// <param name="path">Destination file; written atomically.</param>
    /// <param name="scale">Integer upscaling factor of the whole grid (nearest neighbour; padding scales too).</param>
    /// <param name="padding">Pixels between and around cells before scaling.</param>
    /// <param name="padValue">Value of padding and empty cells; mid grey by default.</param>
    internal static void SaveGrid(Tensor images, GridLayout layout, string path, int scale = 1, int padding = 2, double padValue = ImageGrid.DefaultPadValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckScale(scale);
        using var grid = ImageGrid.Compose(images, layout, padding, padValue);
        SavePng(grid, path, scale);
    }

    /// <summary>Encodes one image as PNG bytes (see <see cref="SavePng"/>).</summary>
    /// <param name="image">[C, H, W], [1, C, H, W] or [H, W], C = 1 or 3; values are clamped to [0, 1].</param>
    /// <param name="scale">Integer upscaling factor (nearest neighbour), at least 1.</param>
    /// <returns>The PNG file content.</returns>
    /// <exception cref="ArgumentException">Wrong shape or channel count, or a NaN value.</exception>
    public static byte[] EncodePng(Tensor image, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckScale(scale);
        var (pixels, channels, height, width) = ToBytes(image, scale);
        var info = new SKImageInfo(width, height, channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        int bytesPerPixel = channels == 1 ? 1 : 4;
        var row = new byte[width * bytesPerPixel];
        IntPtr destination = bitmap.GetPixels();
        for (int y = 0; y < height; y++)
        {
            if (channels == 1)
            {
                Buffer.BlockCopy(pixels, y * width, row, 0, width);
            }
            else
            {
                for (int x = 0; x < width; x++)
                {
                    int s = (y * width + x) * 3, d = x * 4;
                    row[d] = pixels[s]; row[d + 1] = pixels[s + 1]; row[d + 2] = pixels[s + 2]; row[d + 3] = 255;
                }
            }
            Marshal.Copy(row, 0, destination + y * bitmap.RowBytes, row.Length);
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {width}x{height} {(channels == 1 ? "grayscale" : "RGB")} PNG.");
        return data.ToArray();
    }

    /// <summary>
    /// Reads an image file (PNG, JPEG, BMP, GIF, WebP...) as a grayscale tensor of the requested size.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="width">Output width; the image is resized (bilinear with antialiasing) when it differs.</param>
    /// <param name="height">Output height.</param>
    /// <param name="invert">Return <c>1 - v</c>: use for dark digits on a light background (MNIST digits are white on black).</param>
    /// <returns>[1, 1, height, width] float32 in [0, 1] on the CPU. The caller owns it.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an image, or is damaged or truncated; the message names it.</exception>
    public static Tensor LoadImage(string path, int width = 28, int height = 28, bool invert = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckSize(width, height);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Image file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return LoadImage(stream, width, height, invert, path);
    }

    /// <summary>
    /// Reads an encoded image from a stream as a grayscale tensor of the requested size. Luminance is
    /// <c>0.299 R + 0.587 G + 0.114 B</c> (ITU-R BT.601, as PIL's <c>convert("L")</c>); transparent pixels are
    /// composited over white; the image is stretched to <paramref name="width"/> x <paramref name="height"/> with
    /// antialiased bilinear interpolation when its size differs. The EXIF orientation of JPEGs is not applied.
    /// </summary>
    /// <param name="stream">The encoded image; read to its end.</param>
    /// <param name="width">Output width, at least 1.</param>
    /// <param name="height">Output height, at least 1.</param>
    /// <param name="invert">Return <c>1 - v</c>: use for dark digits on a light background.</param>
    /// <param name="sourceName">Name of the source for error messages (e.g. a file name).</param>
    /// <returns>[1, 1, height, width] float32 in [0, 1] on the CPU. The caller owns it.</returns>
    /// <exception cref="InvalidDataException">The data is not an image, or is damaged or truncated, or too large.</exception>
    public static Tensor LoadImage(Stream stream, int width = 28, int height = 28, bool invert = false, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckSize(width, height);
        string name = sourceName ?? "stream";
        byte[] encoded;
        using (var buffer = new MemoryStream())
        {
            stream.CopyTo(buffer);
            encoded = buffer.ToArray();
        }
        if (encoded.Length == 0)
            throw new InvalidDataException($"'{name}' is empty: it holds no image.");

        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data)
            ?? throw new InvalidDataException($"'{name}' is not an image in a format SkiaSharp can decode (PNG, JPEG, BMP, GIF, WebP, ICO, WBMP) or its header is damaged.");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w < 1 || h < 1 || (long)w * h > MaxDecodedPixels)
            throw new InvalidDataException($"'{name}' declares a {w}x{h} image; accepted are 1 to {MaxDecodedPixels} pixels.");
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        var result = codec.GetPixels(info, rgba);
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"'{name}' could not be decoded ({result}): the {codec.EncodedFormat} data is damaged or truncated.");

        var gray = new float[w * h];
        for (int i = 0; i < gray.Length; i++)
        {
            int p = i * info.BytesPerPixel;
            double luma = (0.299 * rgba[p] + 0.587 * rgba[p + 1] + 0.114 * rgba[p + 2]) / 255.0;
            double alpha = rgba[p + 3] / 255.0;
            gray[i] = (float)(alpha * luma + (1 - alpha));
        }

        using var scope = NewDisposeScope();
        var image = tensor(gray, new long[] { 1, 1, h, w });
        if (w != width || h != height)
        {
            image = nn.functional.interpolate(image, new long[] { height, width }, mode: InterpolationMode.Bilinear,
                align_corners: false, antialias: true).clamp(TorchScalars.Zero, TorchScalars.One);
        }
        if (invert)
            image = image.neg().add_(TorchScalars.One, TorchScalars.One); // 1 - v, exactly; see TorchScalars
        return image.contiguous().MoveToOuterDisposeScope();
    }

    private static (byte[] Pixels, int Channels, int Height, int Width) ToBytes(Tensor image, int scale)
    {
        long[] shape = image.shape;
        long[] chw = image.dim() switch
        {
            2 => new[] { 1L, shape[0], shape[1] },
            3 => shape,
            4 when shape[0] == 1 => new[] { shape[1], shape[2], shape[3] },
            _ => throw TensorGuard.Mismatch(nameof(image), "one image of shape [C, H, W], [1, C, H, W] or [H, W]", TensorGuard.Format(shape)),
        };
        if (chw[0] != 1 && chw[0] != 3)
            throw TensorGuard.Mismatch(nameof(image), "1 (grayscale) or 3 (RGB) channels", chw[0].ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (chw[1] < 1 || chw[2] < 1)
            throw TensorGuard.Mismatch(nameof(image), "a non-empty image", TensorGuard.Format(shape));
        if ((long)chw[1] * scale > 65535 || (long)chw[2] * scale > 65535)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, $"A {chw[2]}x{chw[1]} image scaled by {scale} exceeds 65535 pixels per side.");

        using var scope = NewDisposeScope();
        var x = image.detach().to(ScalarType.Float32, CPU).reshape(chw);
        if (x.isnan().any().item<bool>())
            throw TensorGuard.Mismatch(nameof(image), "pixel values that are numbers", "NaN values");
        if (scale > 1)
            x = x.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
        // [C, H, W] -> [H, W, C] so that the bytes are interleaved per pixel.
        var bytes = x.clamp(TorchScalars.Zero, TorchScalars.One).mul(TorchScalars.Byte).round().to(ScalarType.Byte).permute(1, 2, 0).contiguous();
        return (bytes.data<byte>().ToArray(), (int)chw[0], (int)x.shape[1], (int)x.shape[2]);
    }

    private static void CheckScale(int scale)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be at least 1.");
    }

    private static void CheckSize(int width, int height)
    {
        if (width < 1) throw new ArgumentOutOfRangeException(nameof(width), width, "width must be at least 1.");
        if (height < 1) throw new ArgumentOutOfRangeException(nameof(height), height, "height must be at least 1.");
    }
}
