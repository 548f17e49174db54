using System.Collections.Concurrent;
using System.Diagnostics;
using DiffusionClassifier.Data;
using DiffusionClassifier.Tests.TestSupport;
using Xunit.Abstractions;

namespace DiffusionClassifier.Tests.Data;

/// <summary>Mirror downloads against a local HTTP server serving small generated idx files.</summary>
public sealed class MnistFetcherMirrorTests : IDisposable
{
    private readonly TempFolder temp = new();
    private readonly Dictionary<string, byte[]> content;
    private readonly MnistFileInfo[] infos;
    private readonly LocalHttpServer server;
    private readonly ManualResetEventSlim release = new(false);
    private readonly SemaphoreSlim slowRequests = new(0);
    private readonly ITestOutputHelper output;

    public MnistFetcherMirrorTests(ITestOutputHelper output)
    {
        this.output = output;
        (content, infos) = IdxBytes.FakeMnist(train: 40, test: 10, side: 6);
        server = new LocalHttpServer(Answer);
    }

    public void Dispose()
    {
        release.Set();
        server.Dispose();
        release.Dispose();
        slowRequests.Dispose();
        temp.Dispose();
    }

    private string Target => temp.File("mnist");

    [Fact]
    public async Task DownloadsDecompressesAndVerifiesEveryFile()
    {
        var reports = new ConcurrentQueue<MnistFetchProgress>();
        var fetcher = new MnistFetcher(Options("good"), new HttpClient());
        var result = await fetcher.DownloadFromMirrorsAsync(Target, new SyncProgress<MnistFetchProgress>(reports.Enqueue));

        Assert.False(result.AlreadyPresent);
        Assert.Equal(Mirror("good").ToString(), result.Source);
        Assert.Equal(content.Keys.Order(StringComparer.Ordinal), temp.Entries(Target));
        foreach (var (name, bytes) in content)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Target, name)));
        foreach (var info in infos)
            Assert.Contains(reports, r => r.FileName == info.Name && r.BytesWritten == info.Length && r.TotalBytes == info.Length);
        Assert.Equal(4, server.CountRequests("/good/"));

        // A second call finds the verified files and does not touch the network.
        var again = await fetcher.DownloadFromMirrorsAsync(Target);
        Assert.True(again.AlreadyPresent);
        Assert.Equal(4, server.Requests.Count);
    }

    [Theory]
    [InlineData("missing", 1)]  // 404: not retried
    [InlineData("corrupt", 1)]  // valid gzip of the wrong bytes: fails the hash, not retried
    [InlineData("garbage", 1)]  // not gzip at all
    [InlineData("error", 2)]    // 500: transient, retried AttemptsPerMirror times
    [InlineData("bomb", 1)]     // decompresses to far more than expected
    public async Task FallsBackToTheNextMirror(string bad, int attemptsPerFile)
    {
        var result = await new MnistFetcher(Options(bad, "good")).DownloadFromMirrorsAsync(Target);
        Assert.Equal(Mirror("good").ToString(), result.Source);
        MnistFiles.Verify(Target, infos);
        Assert.Equal(4 * attemptsPerFile, server.CountRequests($"/{bad}/"));
        Assert.Equal(content.Keys.Order(StringComparer.Ordinal), temp.Entries(Target));
    }

    [Fact]
    public async Task AcceptsAMirrorServingUncompressedFiles()
    {
        await new MnistFetcher(Options("raw")).DownloadFromMirrorsAsync(Target);
        MnistFiles.Verify(Target, infos);
    }

    [Fact]
    public async Task WhenAllMirrorsFailItThrowsAndLeavesNothing()
    {
        var fetcher = new MnistFetcher(Options("missing", "corrupt", "error"), new HttpClient());
        var e = await Assert.ThrowsAsync<IOException>(() => fetcher.DownloadFromMirrorsAsync(Target));
        Assert.Contains(infos[0].Name, e.Message);
        Assert.Contains(Mirror("missing") + infos[0].Name + ".gz: HTTP 404", e.Message);
        Assert.Contains("SHA-256", e.Message);
        Assert.Contains("HTTP 500", e.Message);
        Assert.False(Directory.Exists(Target));

        // An existing folder keeps what it had and gains nothing, not even the staging folder.
        Directory.CreateDirectory(Target);
        File.WriteAllText(Path.Combine(Target, "notes.txt"), "mine");
        await Assert.ThrowsAsync<IOException>(() => fetcher.DownloadFromMirrorsAsync(Target));
        Assert.Equal(["notes.txt"], temp.Entries(Target));
    }

    [Fact]
    public async Task AFailureOnALaterFileLeavesNoEarlierFileBehind()
    {
        // Only the last file is missing everywhere: the three verified ones must not be moved into place.
        string last = infos[^1].Name;
        var options = Options("good");
        options.Files = [.. infos[..^1], infos[^1] with { Name = last + "-absent" }];
        await Assert.ThrowsAsync<IOException>(() => new MnistFetcher(options).DownloadFromMirrorsAsync(Target));
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public async Task ASlowMirrorTimesOutAndTheNextIsUsed()
    {
        // The time-out also bounds the good mirror's download: warm the HTTP stack up so that it takes milliseconds,
        // and allow far more. The slow mirror never answers, so its attempts end by the time-out whatever the speed.
        using (var warmUp = new HttpClient())
            await warmUp.GetByteArrayAsync(new Uri(Mirror("good"), infos[0].Name + ".gz"));
        var options = Options("slow", "good");
        options.RequestTimeout = TimeSpan.FromSeconds(1);
        options.AttemptsPerMirror = 2; // a time-out is transient: retried once on the same mirror
        options.Files = [infos[0]];
        var clock = Stopwatch.StartNew();
        var result = await new MnistFetcher(options).DownloadFromMirrorsAsync(Target);
        output.WriteLine($"two time-outs and the good mirror in {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(Mirror("good").ToString(), result.Source);
        // A request reaches the server's handler asynchronously, possibly after the client gave up on it: wait for
        // both attempts instead of counting at once.
        for (int attempt = 1; attempt <= 2; attempt++)
            Assert.True(await slowRequests.WaitAsync(TimeSpan.FromSeconds(30)), $"the slow mirror saw {attempt - 1} request(s)");
        Assert.Equal(2, server.CountRequests("/slow/"));
        MnistFiles.Verify(Target, options.Files);
    }

    [Fact]
    public async Task CancellationStopsTheDownloadAndLeavesNothing()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => new MnistFetcher(Options("slow", "good")).DownloadFromMirrorsAsync(Target, null, cancel.Token));
        Assert.False(Directory.Exists(Target));
        Assert.Equal(0, server.CountRequests("/good/"));
    }

    [Fact]
    public async Task FetchFallsBackToTheMirrorsWhenNpmIsMissing()
    {
        var options = Options("good");
        options.NpmExecutable = temp.File("no-such-npm");
        var result = await new MnistFetcher(options).FetchAsync(Target);
        Assert.Equal(Mirror("good").ToString(), result.Source);
        MnistFiles.Verify(Target, infos);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new MnistFetcher(new MnistFetchOptions { Mirrors = [new Uri("http://127.0.0.1/no-slash")] }));
        Assert.Throws<ArgumentException>(() => new MnistFetcher(new MnistFetchOptions { Mirrors = [new Uri("ftp://127.0.0.1/x/")] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MnistFetcher(new MnistFetchOptions { AttemptsPerMirror = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MnistFetcher(new MnistFetchOptions { RequestTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentException>(() => new MnistFetcher(new MnistFetchOptions { Files = [] }));
        Assert.Throws<ArgumentException>(() => new MnistFetcher(new MnistFetchOptions { Files = [infos[0], infos[0]] }));
        Assert.Throws<ArgumentException>(() => new MnistFetcher(new MnistFetchOptions { NpmDataPath = "package/data" }));
    }

    private Uri Mirror(string name) => new(server.BaseAddress, name + "/");

    private MnistFetchOptions Options(params string[] mirrors) => new()
    {
        Files = infos,
        Mirrors = [.. mirrors.Select(Mirror)],
        RetryDelay = TimeSpan.Zero,
        AttemptsPerMirror = 2,
        RequestTimeout = TimeSpan.FromSeconds(20),
    };

    private (int, byte[]) Answer(string path)
    {
        var parts = path.Trim('/').Split('/');
        if (parts.Length != 2 || !parts[1].EndsWith(".gz", StringComparison.Ordinal)
            || !content.TryGetValue(parts[1][..^3], out var raw))
            return (404, []);
        return parts[0] switch
        {
            "good" => (200, IdxBytes.Gzip(raw)),
            "raw" => (200, raw),
            "corrupt" => (200, IdxBytes.Gzip(raw.Select(b => (byte)(b ^ 1)).ToArray())),
            "garbage" => (200, IdxBytes.Random(raw.Length / 2 + 10, 1)),
            "error" => (500, []),
            "bomb" => (200, IdxBytes.Gzip([.. raw, .. new byte[4 << 20]])),
            "slow" => Slow(raw),
            _ => (404, []),
        };
    }

    private (int, byte[]) Slow(byte[] raw)
    {
        slowRequests.Release();
        release.Wait(TimeSpan.FromSeconds(10));
        return (200, IdxBytes.Gzip(raw));
    }
}
