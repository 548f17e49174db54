"""Replays pruning and the early exit offline on per-sample losses written by `evaluate --sample-errors`.

Usage: python3 tools/analysis/early_exit_simulation.py FILE.jsonl "[(pruning, exit), ...]" [sd|successive]
  pruning: [(fraction, keep), ...]; exit: None or (error_rate, first_look, look_growth).
  sd: the library's variance (sample variance of the paired differences);
  successive: the successive-difference variance along t (not in the library; for comparison).
The draw order in FILE is the one of the run that wrote it, so runs with other boundaries are approximated.
See docs/early-exit.md.
"""
import math, sys
from sample_errors import read
def betacf(x,a,b):
    tiny=1e-300; c=1; d=1-(a+b)*x/(a+1); d=1/(d if abs(d)>tiny else tiny); h=d
    for m in range(1,500):
        m2=2*m; aa=m*(b-m)*x/((a+m2-1)*(a+m2)); d=1+aa*d; d=1/(d if abs(d)>tiny else tiny); c=1+aa/c; c=c if abs(c)>tiny else tiny; h*=d*c
        aa=-(a+m)*(a+b+m)*x/((a+m2)*(a+m2+1)); d=1+aa*d; d=1/(d if abs(d)>tiny else tiny); c=1+aa/c; c=c if abs(c)>tiny else tiny; de=d*c; h*=de
        if abs(de-1)<1e-15: break
    return h
def ibeta(x,a,b):
    if x<=0: return 0
    if x>=1: return 1
    f=math.exp(math.lgamma(a+b)-math.lgamma(a)-math.lgamma(b)+a*math.log(x)+b*math.log(1-x))
    return f*betacf(x,a,b)/a if x<(a+1)/(a+b+2) else 1-f*betacf(1-x,b,a)/b
def upper(t,nu): return 0.5*ibeta(nu/(nu+t*t),nu/2,0.5)
def tq(p,nu):
    tail=1-p; lo,hi=0,1
    while upper(hi,nu)>tail: hi*=2
    for _ in range(200):
        mid=(lo+hi)/2
        if upper(mid,nu)>tail: lo=mid
        else: hi=mid
    return (lo+hi)/2
def load(path): return list(read(path))
def looks_of(n, first, growth):
    r=[]; m=first
    while m<n:
        r.append(int(m)); m=max(round(m*growth+1e-9), m+1)
    return r
def run(item, prune, exit, K=10, variance='sd'):
    n=item['n']; E=item['errors']; T=item['timesteps']
    ends={max(1,min(n,int(math.floor(f*n+0.5)))):k for f,k in prune}
    ends={e:k for e,k in ends.items() if e<n}
    looks=[] if exit is None else looks_of(n, exit[1], exit[2])
    L=len(looks)
    bounds=sorted(set(ends)|set(looks))
    surv=list(range(K)); evals=0; start=0; stop='all'
    for b in bounds+[n]:
        evals+=(b-start)*len(surv); start=b
        if b==n: break
        if b in ends and len(surv)>ends[b]:
            s={c:sum(E[j][c] for j in range(b)) for c in surv}
            surv=sorted(sorted(surv,key=lambda c:(s[c],c))[:ends[b]])
        if len(surv)==1: stop='one'; break
        if b in looks:
            q=crit(b,L,K,exit[0])
            s={c:sum(E[j][c] for j in range(b)) for c in surv}
            a=min(surv,key=lambda c:(s[c],c)); ok=True
            for c in surv:
                if c==a: continue
                d=[E[j][c]-E[j][a] for j in sorted(range(b),key=lambda j:T[j])]; mu=sum(d)/b
                if variance=='sd': var=sum((x-mu)**2 for x in d)/(b-1)
                else: var=sum((d[i+1]-d[i])**2 for i in range(b-1))/(2*(b-1))
                se=math.sqrt(var/b)
                if not (mu>0 and (se==0 or mu/se>q)): ok=False; break
            if ok: stop='dec'; break
    s={c:sum(E[j][c] for j in range(start)) for c in surv}
    lab=min(surv,key=lambda c:(s[c],c))
    return lab, evals, stop, start
_c={}
def crit(m,L,K,a):
    k=(m,L,K,a)
    if k not in _c: _c[k]=tq(1-a/(L*(K-1)),m-1)
    return _c[k]
if __name__=="__main__":
    items=load(sys.argv[1])
    n=items[0]['n']
    configs=eval(sys.argv[2])
    variance=sys.argv[3] if len(sys.argv)>3 else 'sd'
    for prune,exit in configs:
        base=[run(it,prune,None) for it in items]
        res=[run(it,prune,exit,variance=variance) for it in items]
        acc0=sum(r[0]==it['label'] for r,it in zip(base,items))/len(items)
        acc=sum(r[0]==it['label'] for r,it in zip(res,items))/len(items)
        agree=sum(r[0]==b[0] for r,b in zip(res,base))
        ev=sum(r[1] for r in res)/len(items); ev0=sum(r[1] for r in base)/len(items)
        stops={k:sum(r[2]==k for r in res) for k in ('all','one','dec')}
        gain=sum(r[0]==it['label']!=b[0] for r,b,it in zip(res,base,items)); loss=sum(b[0]==it['label']!=r[0] for r,b,it in zip(res,base,items))
        print(f"{variance} prune={prune} exit={exit}: acc {acc0:.4f}->{acc:.4f} (+{gain}/-{loss}) disagree {len(items)-agree} evals {ev0:.1f}->{ev:.1f} stops {stops}")
