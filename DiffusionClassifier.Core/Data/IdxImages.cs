namespace DiffusionClassifier.Data;

/// <summary>The content of an idx3 image file: <paramref name="Count"/> images of <paramref name="Rows"/> x
/// <paramref name="Columns"/> unsigned-byte pixels, stored image after image, row-major.</summary>
/// <param name="Count">Number of images.</param>
/// <param name="Rows">Image height.</param>
/// <param name="Columns">Image width.</param>
/// <param name="Pixels">Count x Rows x Columns bytes, 0 (background) to 255.</param>
internal readonly record struct IdxImages(int Count, int Rows, int Columns, byte[] Pixels);
