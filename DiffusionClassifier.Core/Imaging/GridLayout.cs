namespace DiffusionClassifier.Imaging;

/// <summary>
/// Which image goes into which cell of a grid of <see cref="Rows"/> x <see cref="Columns"/> cells (row-major,
/// top-left first). A cell holds an image index into the batch, or -1 when it is empty.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
internal sealed class GridLayout
{
    private readonly int[] cells;

    /// <summary>Creates a layout from its cells.</summary>
    /// <param name="rows">Number of rows, at least 1.</param>
    /// <param name="columns">Number of columns, at least 1.</param>
    /// <param name="cells">Row-major image indices, <paramref name="rows"/> * <paramref name="columns"/> of them; -1 = empty.</param>
    /// <param name="rowLabels">Optional class label shown in each row (one per row).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is below 1 or a cell is below -1.</exception>
    /// <exception cref="ArgumentException">The cell or row-label count does not match the grid.</exception>
    public GridLayout(int rows, int columns, IReadOnlyList<int> cells, IReadOnlyList<int>? rowLabels = null)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "A grid needs at least one row.");
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "A grid needs at least one column.");
        if (cells.Count != (long)rows * columns)
            throw new ArgumentException($"Expected {rows} x {columns} = {(long)rows * columns} cells but got {cells.Count}.", nameof(cells));
        for (int i = 0; i < cells.Count; i++)
            if (cells[i] < -1)
                throw new ArgumentOutOfRangeException(nameof(cells), cells[i], $"Cell {i} holds {cells[i]}; an image index must be >= 0, or -1 for an empty cell.");
        if (rowLabels is not null && rowLabels.Count != rows)
            throw new ArgumentException($"Expected {rows} row labels but got {rowLabels.Count}.", nameof(rowLabels));
        Rows = rows;
        Columns = columns;
        this.cells = cells.ToArray();
        RowLabels = rowLabels?.ToArray();
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Columns { get; }

    /// <summary>The image indices, row-major; -1 marks an empty cell.</summary>
    public IReadOnlyList<int> Cells => cells;

    /// <summary>The class label of each row when the layout was made by <see cref="ByLabel"/>; otherwise null.</summary>
    public IReadOnlyList<int>? RowLabels { get; }

    /// <summary>The image index in a cell, or -1 when it is empty.</summary>
    /// <param name="row">Row, 0 at the top.</param>
    /// <param name="column">Column, 0 at the left.</param>
    public int this[int row, int column]
    {
        get
        {
            if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"row must lie in 0..{Rows - 1}.");
            if ((uint)column >= (uint)Columns) throw new ArgumentOutOfRangeException(nameof(column), column, $"column must lie in 0..{Columns - 1}.");
            return cells[row * Columns + column];
        }
    }

    /// <summary>Images 0..count-1 in reading order, <paramref name="columns"/> per row (like torchvision's <c>make_grid</c>).</summary>
    /// <param name="count">Number of images, at least 1.</param>
    /// <param name="columns">Images per row, at least 1 (fewer columns are used when there are fewer images).</param>
    public static GridLayout RowMajor(int count, int columns)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "A grid needs at least one image.");
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "A grid needs at least one column.");
        int cols = Math.Min(columns, count);
        int rows = (count + cols - 1) / cols;
        var cells = new int[rows * cols];
        for (int i = 0; i < cells.Length; i++)
            cells[i] = i < count ? i : -1;
        return new GridLayout(rows, cols, cells);
    }

    /// <summary>
    /// One row per distinct label (ascending), holding that label's images in batch order; the grid is as wide as the
    /// most frequent label, and shorter rows end in empty cells.
    /// </summary>
    /// <param name="labels">The label of every image in the batch (at least one).</param>
    public static GridLayout ByLabel(IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Count == 0) throw new ArgumentException("A grid needs at least one image.", nameof(labels));
        var byLabel = new SortedDictionary<int, List<int>>();
        for (int i = 0; i < labels.Count; i++)
        {
            if (!byLabel.TryGetValue(labels[i], out var list))
                byLabel[labels[i]] = list = new List<int>();
            list.Add(i);
        }
        int rows = byLabel.Count, cols = byLabel.Values.Max(l => l.Count);
        var cells = new int[rows * cols];
        Array.Fill(cells, -1);
        int r = 0;
        foreach (var list in byLabel.Values)
        {
            for (int c = 0; c < list.Count; c++)
                cells[r * cols + c] = list[c];
            r++;
        }
        return new GridLayout(rows, cols, cells, byLabel.Keys.ToArray());
    }
}
