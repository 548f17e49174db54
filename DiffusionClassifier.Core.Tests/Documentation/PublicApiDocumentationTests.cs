using System.Text.RegularExpressions;
using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.Documentation;

/// <summary>docs/public-api.md names exactly the types the package exports, with the count it states.</summary>
public partial class PublicApiDocumentationTests
{
    [Fact]
    public void ThePageNamesExactlyTheExportedTypes()
    {
        string page = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Documentation", "public-api.md"));
        var documented = TypeRow().Matches(page).Select(m => "DiffusionClassifier." + m.Groups[1].Value).Order().ToArray();
        var exported = typeof(BayesClassifier).Assembly.GetExportedTypes().Select(t => t.FullName!).Order().ToArray();
        Assert.Equal(exported, documented);
        Assert.Contains($"exports {exported.Length} types", page);
    }

    [GeneratedRegex(@"^\| `([A-Za-z.]+)` \|", RegexOptions.Multiline)]
    private static partial Regex TypeRow();
}
