using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>
/// The resumable record of an evaluation: a JSON-lines file with one <see cref="ImageResult"/> per (run key, item
/// index, N). Results are appended and flushed to disk after every batch, so an interrupted evaluation loses at most
/// the batch in flight; a torn last line (the process died mid-write) is dropped when the file is opened again.
/// One writer at a time: do not share a cache file between concurrent runs.
/// </summary>
internal sealed class EvaluationCache : IDisposable
{
    private readonly Dictionary<(string Key, int Index, int N), ImageResult> entries = new();
    private readonly FileStream stream;

    private EvaluationCache(FileStream stream, string path)
    {
        this.stream = stream;
        Path = path;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Bytes of a torn last line dropped on opening (0 when the file ended cleanly).</summary>
    public long DroppedTornBytes { get; private set; }

    /// <summary>Number of results in the file.</summary>
    public int Count => entries.Count;

    /// <summary>Opens (or creates) a cache file and reads what it holds.</summary>
    /// <exception cref="InvalidDataException">A line other than the last is not a result (the file is not a cache or
    /// was edited); the message names the line.</exception>
    public static EvaluationCache Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        string? folder = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(folder))
            Directory.CreateDirectory(folder);
        var stream = new FileStream(full, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var cache = new EvaluationCache(stream, full);
        try
        {
            cache.Load();
            return cache;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The run key: the first 16 hex digits of the SHA-256 of the model's, the data's and the options' identities.
    /// Results are reused only under the same key.
    /// </summary>
    public static string ComputeKey(string modelSha256, string dataSha256, string optionsDescription) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{modelSha256}\n{dataSha256}\n{optionsDescription}")))[..16];

    /// <summary>The cached result for an item, if any.</summary>
    public bool TryGet(string key, int index, int n, out ImageResult result) =>
        entries.TryGetValue((key, index, n), out result!);

    /// <summary>Appends results and flushes them to disk.</summary>
    public void Append(IEnumerable<ImageResult> results)
    {
        var text = new StringBuilder();
        var added = new List<ImageResult>();
        foreach (var r in results)
        {
            text.Append(JsonSerializer.Serialize(r)).Append('\n');
            added.Add(r);
        }
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        stream.Seek(0, SeekOrigin.End);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
        foreach (var r in added)
            entries[(r.Key, r.Index, r.N)] = r;
    }

    /// <inheritdoc />
    public void Dispose() => stream.Dispose();

    /// <summary>
    /// Reads the results in a cache file without opening it for writing (a torn last line is skipped, not removed),
    /// in file order. A later line for the same (key, item, N) replaces an earlier one, as on resuming.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A complete line is not a result; the message names the line.</exception>
    public static IReadOnlyList<ImageResult> ReadResults(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new FileNotFoundException($"Evaluation cache '{full}' does not exist.", full);
        var bytes = File.ReadAllBytes(full);
        var results = new Dictionary<(string Key, int Index, int N), ImageResult>();
        foreach (var r in Parse(bytes, CompleteLength(bytes), full))
            results[(r.Key, r.Index, r.N)] = r;
        return results.Values.ToList();
    }

    private void Load()
    {
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        int complete = CompleteLength(bytes);
        if (complete < bytes.Length)
        {
            DroppedTornBytes = bytes.Length - complete;
            stream.SetLength(complete);
        }
        foreach (var r in Parse(bytes, complete, Path))
            entries[(r.Key, r.Index, r.N)] = r;
    }

    /// <summary>Everything after the last newline is a line whose write did not finish.</summary>
    private static int CompleteLength(byte[] bytes) => Array.LastIndexOf(bytes, (byte)'\n') + 1;

    private static IEnumerable<ImageResult> Parse(byte[] bytes, int complete, string path)
    {
        var lines = Encoding.UTF8.GetString(bytes, 0, complete).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
                continue;
            ImageResult? r;
            try
            {
                r = JsonSerializer.Deserialize<ImageResult>(lines[i]);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"Evaluation cache '{path}', line {i + 1}, is not a result ({e.Message}); delete the file or pass another --cache.", e);
            }
            if (r is null || r.Key is null)
                throw new InvalidDataException($"Evaluation cache '{path}', line {i + 1}, is not a result; delete the file or pass another --cache.");
            yield return r;
        }
    }
}
