using System.Globalization;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.IO;
using SkiaSharp;

namespace DiffusionClassifier.Cli.Reporting;

/// <summary>The PNG charts the commands draw: reliability diagrams and learning curves.</summary>
internal static class Charts
{
    private const int Panel = 360, Margin = 56;

    /// <summary>
    /// Reliability diagrams side by side, one per (title, bins): bars of accuracy per confidence bin over the diagonal
    /// of perfect calibration, with each bin's gap to it shaded.
    /// </summary>
    public static void ReliabilityDiagram(string path, IReadOnlyList<(string Title, IReadOnlyList<CalibrationMetrics.Bin> Bins)> panels)
    {
        using var surface = Blank(panels.Count);
        var canvas = surface.Canvas;
        using var font = new SKFont(SKTypeface.Default, 13);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var line = new SKPaint { Color = SKColors.Black, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        using var diagonal = new SKPaint { Color = SKColors.Gray, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 1, PathEffect = SKPathEffect.CreateDash([6, 4], 0) };
        using var bar = new SKPaint { Color = new SKColor(70, 110, 190), Style = SKPaintStyle.Fill };
        using var gap = new SKPaint { Color = new SKColor(220, 80, 80, 110), Style = SKPaintStyle.Fill };
        for (int i = 0; i < panels.Count; i++)
        {
            float left = Margin + i * (Panel + Margin), top = Margin, bottom = Margin + Panel;
            float X(double v) => left + (float)v * Panel;
            float Y(double v) => bottom - (float)v * Panel;
            foreach (var b in panels[i].Bins)
            {
                if (b.Count == 0) continue;
                canvas.DrawRect(SKRect.Create(X(b.Lower) + 1, Y(b.Accuracy), X(b.Upper) - X(b.Lower) - 2, Y(0) - Y(b.Accuracy)), bar);
                float a = Y(b.Accuracy), c = Y(b.MeanConfidence);
                canvas.DrawRect(new SKRect(X(b.Lower) + 1, Math.Min(a, c), X(b.Upper) - 1, Math.Max(a, c)), gap);
            }
            canvas.DrawLine(X(0), Y(0), X(1), Y(1), diagonal);
            canvas.DrawRect(new SKRect(X(0), Y(1), X(1), Y(0)), line);
            for (int k = 0; k <= 5; k++)
            {
                double v = k / 5.0;
                string label = v.ToString("0.0", CultureInfo.InvariantCulture);
                canvas.DrawText(label, X(v) - 9, bottom + 16, font, ink);
                canvas.DrawText(label, left - 28, Y(v) + 4, font, ink);
            }
            canvas.DrawText(panels[i].Title, left, top - 12, font, ink);
            canvas.DrawText("confidence (top-1 probability)", left + Panel / 2f - 90, bottom + 36, font, ink);
            canvas.Save();
            canvas.RotateDegrees(-90, left - 40, top + Panel / 2f + 30);
            canvas.DrawText("accuracy", left - 40, top + Panel / 2f + 30, font, ink);
            canvas.Restore();
        }
        Save(surface, path);
    }

    /// <summary>
    /// Line charts side by side, one per panel: each series as (x, y) points with its name in the legend.
    /// </summary>
    public static void Lines(string path, string xLabel, IReadOnlyList<(string Title, IReadOnlyList<(string Name, IReadOnlyList<(double X, double Y)> Points)> Series)> panels)
    {
        using var surface = Blank(panels.Count);
        var canvas = surface.Canvas;
        using var font = new SKFont(SKTypeface.Default, 13);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var frame = new SKPaint { Color = SKColors.Black, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        SKColor[] colors = [new(70, 110, 190), new(220, 80, 80), new(60, 160, 90), new(150, 90, 180), new(230, 150, 40)];
        for (int i = 0; i < panels.Count; i++)
        {
            var series = panels[i].Series.Where(s => s.Points.Count > 0).ToList();
            var all = series.SelectMany(s => s.Points).ToList();
            if (all.Count == 0) continue;
            double x0 = all.Min(p => p.X), x1 = all.Max(p => p.X), y0 = all.Min(p => p.Y), y1 = all.Max(p => p.Y);
            if (x1 == x0) x1 = x0 + 1;
            double pad = (y1 - y0) * 0.08 + 1e-9;
            y0 -= pad; y1 += pad;
            float left = Margin + i * (Panel + Margin), top = Margin, bottom = Margin + Panel;
            float X(double v) => left + (float)((v - x0) / (x1 - x0)) * Panel;
            float Y(double v) => bottom - (float)((v - y0) / (y1 - y0)) * Panel;
            canvas.DrawRect(new SKRect(left, top, left + Panel, bottom), frame);
            for (int k = 0; k <= 4; k++)
            {
                double vx = x0 + (x1 - x0) * k / 4, vy = y0 + (y1 - y0) * k / 4;
                canvas.DrawText(vx.ToString("G4", CultureInfo.InvariantCulture), X(vx) - 10, bottom + 16, font, ink);
                canvas.DrawText(vy.ToString("G4", CultureInfo.InvariantCulture), left - 50, Y(vy) + 4, font, ink);
            }
            for (int s = 0; s < series.Count; s++)
            {
                using var pen = new SKPaint { Color = colors[s % colors.Length], IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 2 };
                using var dot = new SKPaint { Color = colors[s % colors.Length], IsAntialias = true, Style = SKPaintStyle.Fill };
                var points = series[s].Points.OrderBy(p => p.X).ToList();
                for (int k = 0; k < points.Count; k++)
                {
                    if (k > 0) canvas.DrawLine(X(points[k - 1].X), Y(points[k - 1].Y), X(points[k].X), Y(points[k].Y), pen);
                    canvas.DrawCircle(X(points[k].X), Y(points[k].Y), 3, dot);
                }
                canvas.DrawRect(SKRect.Create(left + 10, top + 10 + 16 * s, 12, 4), dot);
                canvas.DrawText(series[s].Name, left + 26, top + 16 + 16 * s, font, ink);
            }
            canvas.DrawText(panels[i].Title, left, top - 12, font, ink);
            canvas.DrawText(xLabel, left + Panel / 2f - 20, bottom + 36, font, ink);
        }
        Save(surface, path);
    }

    /// <summary>A white surface for <paramref name="panels"/> square panels side by side, with margins.</summary>
    private static SKSurface Blank(int panels)
    {
        var surface = SKSurface.Create(new SKImageInfo(panels * (Panel + Margin) + Margin, Panel + 2 * Margin));
        surface.Canvas.Clear(SKColors.White);
        return surface;
    }

    private static void Save(SKSurface surface, string path)
    {
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("SkiaSharp could not encode the chart as PNG.");
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }
}
