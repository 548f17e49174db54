using DiffusionClassifier.Guards;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Imaging;

/// <summary>
/// Tiles a batch of images into one image following a <see cref="GridLayout"/>. Cell (r, c) has its top-left pixel
/// at (<c>padding + r (H + padding)</c>, <c>padding + c (W + padding)</c>); the grid is
/// <c>rows (H + padding) + padding</c> high and <c>columns (W + padding) + padding</c> wide, as torchvision's
/// <c>make_grid</c>. Padding and empty cells take <c>padValue</c>.
/// </summary>
/// <remarks>Thread-safe (no state). Grids larger than <see cref="MaxSide"/> pixels per side (the PNG writer's limit)
/// are refused before the canvas is allocated.</remarks>
internal static class ImageGrid
{
    /// <summary>The largest grid side in pixels (65,535, what a PNG file can hold and <see cref="ImageIO"/> writes).</summary>
    public const int MaxSide = 65_535;

    /// <summary>The default padding value: mid grey, so cells stay distinct on black and on white backgrounds.</summary>
    public const double DefaultPadValue = 0.5;

    /// <summary>Tiles <paramref name="images"/> row by row, <paramref name="columns"/> per row.</summary>
    /// <param name="images">[N, C, H, W], any float dtype and device.</param>
    /// <param name="columns">Images per row, at least 1.</param>
    /// <param name="padding">Pixels between and around cells, at least 0.</param>
    /// <param name="padValue">Value of padding and empty cells.</param>
    /// <returns>[C, gridH, gridW] float32 on the CPU, values unchanged (no clamping). The caller owns it.</returns>
    /// <exception cref="ArgumentException">The grid would exceed <see cref="MaxSide"/> pixels per side (parameter
    /// <c>padding</c> when the padding alone does, else <c>images</c>).</exception>
    public static Tensor Compose(Tensor images, int columns, int padding = 2, double padValue = DefaultPadValue)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckBatch(images);
        return Compose(images, GridLayout.RowMajor(checked((int)images.shape[0]), columns), padding, padValue);
    }

    /// <summary>Tiles <paramref name="images"/> as <paramref name="layout"/> says.</summary>
    /// <param name="images">[N, C, H, W], any float dtype and device.</param>
    /// <param name="layout">Which image goes into which cell; every index must be below N.</param>
    /// <param name="padding">Pixels between and around cells, at least 0.</param>
    /// <param name="padValue">Value of padding and empty cells.</param>
    /// <returns>[C, gridH, gridW] float32 on the CPU, values unchanged (no clamping). The caller owns it.</returns>
    /// <exception cref="ArgumentException">The grid would exceed <see cref="MaxSide"/> pixels per side (parameter
    /// <c>padding</c> when the padding alone does, else <c>images</c>).</exception>
    public static Tensor Compose(Tensor images, GridLayout layout, int padding = 2, double padValue = DefaultPadValue)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(layout);
        CheckBatch(images);
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must not be negative.");
        if (!double.IsFinite(padValue)) throw new ArgumentOutOfRangeException(nameof(padValue), padValue, "padValue must be finite.");
        long n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3];
        // Checked in double so that absurd paddings or layouts cannot overflow before the comparison.
        double gridH = (double)layout.Rows * (h + padding) + padding, gridW = (double)layout.Columns * (w + padding) + padding;
        if (gridH > MaxSide || gridW > MaxSide)
            throw new ArgumentException($"A {layout.Rows} x {layout.Columns} grid of {h} x {w} images with padding {padding} would be {gridW} x {gridH} pixels; at most {MaxSide} per side are allowed.",
                padding > MaxSide ? nameof(padding) : nameof(images));
        for (int i = 0; i < layout.Cells.Count; i++)
            if (layout.Cells[i] >= n)
                throw new ArgumentException($"Cell {i} of the layout refers to image {layout.Cells[i]} but there are only {n} images.", nameof(layout));

        using var scope = NewDisposeScope();
        var source = images.detach().to(ScalarType.Float32, CPU);
        using var pad = padValue.ToScalar(); // held for the call: see TorchScalars
        var grid = full(new[] { c, layout.Rows * (h + padding) + padding, layout.Columns * (w + padding) + padding }, pad, ScalarType.Float32);
        for (int r = 0; r < layout.Rows; r++)
        {
            for (int col = 0; col < layout.Columns; col++)
            {
                int index = layout[r, col];
                if (index < 0) continue;
                long y = padding + r * (h + padding), x = padding + col * (w + padding);
                using var cell = grid.narrow(1, y, h).narrow(2, x, w);
                using var image = source[index];
                cell.copy_(image);
            }
        }
        return grid.MoveToOuterDisposeScope();
    }

    private static void CheckBatch(Tensor images)
    {
        TensorGuard.Shape(images, nameof(images), [-1, -1, -1, -1]);
        if (images.shape[0] < 1)
            throw TensorGuard.Mismatch(nameof(images), "at least one image", "an empty batch");
        TensorGuard.FloatingPoint(images, nameof(images));
    }
}
