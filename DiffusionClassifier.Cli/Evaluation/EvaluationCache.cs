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

    private void Load()
    {
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        int end = bytes.Length;
        // Everything after the last newline is a line whose write did not finish: drop it.
        int lastNewline = Array.LastIndexOf(bytes, (byte)'\n');
        int complete = lastNewline + 1;
        if (complete < end)
        {
            DroppedTornBytes = end - complete;
            stream.SetLength(complete);
        }
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
                throw new InvalidDataException($"Evaluation cache '{Path}', line {i + 1}, is not a result ({e.Message}); delete the file or pass another --cache.", e);
            }
            if (r is null || r.Key is null)
                throw new InvalidDataException($"Evaluation cache '{Path}', line {i + 1}, is not a result; delete the file or pass another --cache.");
            entries[(r.Key, r.Index, r.N)] = r;
        }
    }
}
