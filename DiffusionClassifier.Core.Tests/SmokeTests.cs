using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests;

public class SmokeTests
{
    [Fact]
    public void StateDictKeysMatchReference()
    {
        using var net = new ConditionalUNet(ConditionalUNetConfig.Mnist(32));
        var keys = net.state_dict().Keys.ToList();
        Console.WriteLine(string.Join("\n", keys.Select(k => k + " " + string.Join("x", net.state_dict()[k].shape))));
        Console.WriteLine(net.parameters().Sum(p => p.numel()));
        Assert.Contains("init_conv.conv1.0.weight", keys);
        using var x = rand(3, 1, 28, 28);
        using var c = tensor(new long[] { 1, 2, 3 });
        using var t = rand(3);
        net.eval();
        using var y = net.forward(x, c, t);
        Assert.Equal(x.shape, y.shape);
    }
}
