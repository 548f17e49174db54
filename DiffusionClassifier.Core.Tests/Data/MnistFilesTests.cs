using DiffusionClassifier.Data;

namespace DiffusionClassifier.Tests.Data;

public sealed class MnistFilesTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void OfficialLengthsAreTheIdxSizesOfMnist()
    {
        var lengths = MnistFiles.Official.ToDictionary(f => f.Name, f => f.Length);
        Assert.Equal(16 + 60_000L * 28 * 28, lengths[MnistFiles.TrainImages]);
        Assert.Equal(8 + 60_000L, lengths[MnistFiles.TrainLabels]);
        Assert.Equal(16 + 10_000L * 28 * 28, lengths[MnistFiles.TestImages]);
        Assert.Equal(8 + 10_000L, lengths[MnistFiles.TestLabels]);
        foreach (var file in MnistFiles.Official)
            file.Validate();
        Assert.Equal(4, MnistFiles.Official.Select(f => f.Sha256).Distinct().Count());
    }

    [Fact]
    public void VerifyAcceptsMatchingFilesRawOrGzipped()
    {
        var (content, infos) = IdxBytes.FakeMnist();
        foreach (var (name, bytes) in content)
        {
            if (name.StartsWith("t10k", StringComparison.Ordinal))
                File.WriteAllBytes(temp.File(name + ".gz"), IdxBytes.Gzip(bytes));
            else
                File.WriteAllBytes(temp.File(name), bytes);
        }
        MnistFiles.Verify(temp.Path, infos);
        Assert.True(MnistFiles.IsValid(temp.Path, infos));
        Assert.False(MnistFiles.IsValid(temp.Path)); // the official hashes do not match fake data
    }

    [Fact]
    public void VerifyNamesTheFileAndBothHashesOnAMismatch()
    {
        var (content, infos) = IdxBytes.FakeMnist();
        foreach (var (name, bytes) in content)
            File.WriteAllBytes(temp.File(name), bytes);
        var changed = (byte[])content[MnistFiles.TestImages].Clone();
        changed[^1] ^= 1;
        File.WriteAllBytes(temp.File(MnistFiles.TestImages), changed);

        var e = Assert.Throws<InvalidDataException>(() => MnistFiles.Verify(temp.Path, infos));
        Assert.Contains(MnistFiles.TestImages, e.Message);
        Assert.Contains(IdxBytes.Sha256(changed), e.Message);
        Assert.Contains(IdxBytes.Sha256(content[MnistFiles.TestImages]), e.Message);
    }

    [Fact]
    public void VerifyReportsWrongLengthsAndMissingFiles()
    {
        var (content, infos) = IdxBytes.FakeMnist();
        foreach (var (name, bytes) in content)
            File.WriteAllBytes(temp.File(name), bytes);
        File.WriteAllBytes(temp.File(MnistFiles.TrainLabels), [.. content[MnistFiles.TrainLabels], 0]);
        var e = Assert.Throws<InvalidDataException>(() => MnistFiles.Verify(temp.Path, infos));
        Assert.Contains($"more than {content[MnistFiles.TrainLabels].Length}", e.Message);

        File.Delete(temp.File(MnistFiles.TrainLabels));
        var missing = Assert.Throws<FileNotFoundException>(() => MnistFiles.Verify(temp.Path, infos));
        Assert.Contains(MnistFiles.TrainLabels, missing.Message);
        Assert.Throws<DirectoryNotFoundException>(() => MnistFiles.Verify(temp.File("none"), infos));
    }

    [Fact]
    public void FileInfosAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new MnistFileInfo("../x", new string('a', 64), 1).Validate());
        Assert.Throws<ArgumentException>(() => new MnistFileInfo("x", "abc", 1).Validate());
        Assert.Throws<ArgumentException>(() => new MnistFileInfo("x", new string('g', 64), 1).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new MnistFileInfo("x", new string('a', 64), 0).Validate());
    }
}
