using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace DiffusionClassifier.Tests.Data;

/// <summary>A tiny HTTP server on 127.0.0.1 for download tests; each request is answered by a handler.</summary>
internal sealed class LocalHttpServer : IDisposable
{
    private readonly HttpListener listener;
    private readonly Func<string, (int Status, byte[] Body)> handler;
    private readonly Task loop;

    public LocalHttpServer(Func<string, (int Status, byte[] Body)> handler)
    {
        this.handler = handler;
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var candidate = new HttpListener();
            candidate.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                candidate.Start();
                listener = candidate;
                BaseAddress = new Uri($"http://127.0.0.1:{port}/");
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                candidate.Close();
            }
        }
        loop = Task.Run(ServeAsync);
    }

    public Uri BaseAddress { get; }

    /// <summary>Paths requested so far, in order of arrival.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public int CountRequests(string prefix) => Requests.Count(p => p.StartsWith(prefix, StringComparison.Ordinal));

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        try { loop.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
    }

    private async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            // A dedicated thread per request: handlers may block (slow-mirror tests) without starving the pool.
            _ = Task.Factory.StartNew(() => Answer(context), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    private void Answer(HttpListenerContext context)
    {
        try
        {
            string path = context.Request.Url!.AbsolutePath;
            Requests.Enqueue(path);
            var (status, body) = handler(path);
            context.Response.StatusCode = status;
            context.Response.ContentLength64 = body.Length;
            context.Response.OutputStream.Write(body);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The client went away (a time-out or cancellation test): nothing to answer.
        }
    }
}
